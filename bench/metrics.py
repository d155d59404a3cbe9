"""Which metric quality=auto searches on: each candidate against SSIMULACRA 2, the reference.

`python -m bench metrics` needs ``ssimulacra2`` (Python + SciPy, 250-950 ms an image: too slow for
the service, so not a dependency); install it in a separate environment with this project on the
path (``pip install ssimulacra2``), or this bench says so and stops. ``make bench`` skips it then.

For 7 kinds of image at 600x400 (4 photos from ``shared/realworld`` when present, text on white, a
smooth gradient, a flat product shot) encoded as JPEG at qualities 5-95, it finds each candidate's
value where SSIMULACRA 2 crosses 65, 70, 75 and 80, and prints the spread of 1 - value over the
images: the smaller, the more one target means the same thing on every kind of image. Then, for
the chosen metric, the quality and SSIMULACRA 2 each image lands at for a few targets.
"""

from __future__ import annotations

import io
import itertools
import tempfile
from pathlib import Path
from typing import Any

import blazediff_ssim  # type: ignore[import-untyped]
from PIL import Image, ImageDraw

from bench.quality import shared_dir
from tests import corpus

CANDIDATES: dict[str, dict[str, Any]] = {
    "MS-SSIM": {"metric": "ms-ssim"},
    "MS-SSIM, MAD pooling": {"metric": "perceptual-ssim", "pooling": "mad"},
    "MS-SSIM Lab + chroma": {"metric": "perceptual-ssim", "color": "lab", "chroma_weight": 1.0},
    "SSIM": {"metric": "ssim"},
}
QUALITIES = (5, 15, 25, 35, 45, 55, 65, 75, 85, 95)


def images(size: tuple[int, int] = (600, 400)) -> dict[str, Image.Image]:
    found: dict[str, Image.Image] = {}
    for name in ("exiforient-Landscape_1.jpg", "exiforient-Portrait_1.jpg", "jpegdecoder-ycck.jpg"):
        path = shared_dir() / "realworld" / name
        if path.is_file():
            with Image.open(path) as im:
                rgb = im.convert("RGB")
            rgb.info = {}
            found[name] = rgb.resize(size if rgb.width > rgb.height else size[::-1], Image.Resampling.LANCZOS)
    text = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(text)
    for y in range(8, size[1] - 16, 20):
        draw.text((8, y), "Stainless steel 18/8, 750 ml - SKU 4411-AB  " * 3, fill=(30, 30, 30), font_size=13)
    product = Image.new("RGB", size, "white")
    w, h = size
    ImageDraw.Draw(product).ellipse((w // 4, h // 7, w * 3 // 4, h * 6 // 7), fill=(200, 40, 40), width=4)
    ramp = Image.linear_gradient("L").resize(size)
    found["text on white"] = text
    found["smooth gradient"] = Image.merge(
        "RGB", (ramp, ramp.rotate(90).resize(size), Image.new("L", size, 200))
    )
    found["product on white"] = product
    found["grainy texture"] = corpus.textured(size)
    return found


def main(argv: list[str] | None = None) -> None:
    try:
        from ssimulacra2 import compute_ssimulacra2  # type: ignore[import-not-found]
    except ImportError:
        print("skipped: needs the ssimulacra2 package (see bench/metrics.py)")
        return
    rows: dict[str, list[tuple[int, float, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, dist_path = Path(tmp, "ref.png"), Path(tmp, "dist.png")
        for name, image in images().items():
            image.save(ref_path)
            reference = image.convert("RGBA").tobytes()
            rows[name] = []
            for q in QUALITIES:
                buf = io.BytesIO()
                image.save(buf, "JPEG", quality=q, optimize=True)
                decoded = Image.open(buf).convert("RGB")
                decoded.save(dist_path)
                s2 = float(compute_ssimulacra2(str(ref_path), str(dist_path)))
                seen = decoded.convert("RGBA").tobytes()
                values = {
                    label: float(blazediff_ssim.compare_rgba(reference, seen, *image.size, **kw).score)
                    for label, kw in CANDIDATES.items()
                }
                rows[name].append((q, s2, values))
            print(
                f"{name:28} SSIMULACRA 2 at q{QUALITIES[0]}..q{QUALITIES[-1]}:",
                [round(r[1]) for r in rows[name]],
            )
    for level in (65, 70, 75, 80):
        print(f"where SSIMULACRA 2 = {level}: spread of 1 - value over the images (smaller is better)")
        for label in CANDIDATES:
            at = []
            for found in rows.values():
                for (_, a0, m0), (_, a1, m1) in itertools.pairwise(found):
                    if a0 < level <= a1:
                        at.append(1 - (m0[label] + (level - a0) / (a1 - a0) * (m1[label] - m0[label])))
                        break
            spread = max(at) / min(at) if at and min(at) > 0 else float("nan")
            print(f"  {label:22} {spread:5.1f}x over {len(at)} images")
    label = "MS-SSIM, MAD pooling"
    for target in (0.99, 0.992, 0.995):
        landed = []
        for name, found in rows.items():
            hit = next(((q, s2) for q, s2, m in found if m[label] >= target), None)
            landed.append(f"{name}: q{hit[0]} ({hit[1]:.0f})" if hit else f"{name}: -")
        print(f"{label} {target}: quality (SSIMULACRA 2) each lands at:", "; ".join(landed))


if __name__ == "__main__":
    main()
