"""Quality per image (sansio/quality.py): what it costs and what it saves.

`python -m bench quality [--seconds S]` (also run by `make bench`), on one core:

- cost: images/s of ``transform`` at the fixed quality 50 against ``quality=auto`` on the images
  bench's mix (6 MP JPEG, 1 MP JPEG, RGBA PNG, WebP). Target: auto costs at most 2x.
- bytes: on a varied set (smooth gradients, noise texture, text on white, a flat product shot,
  photos from ``shared/realworld`` when present), each image already at its output size (scale 1)
  as JPEG: total bytes of auto, of fixed 50, and of the best single fixed quality, the lowest that
  gives every image at least auto's worst score (each output scored against its input with the
  same metric, on the whole image). Target: auto takes fewer bytes than that one.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

from PIL import Image, ImageDraw

from bench.images import inputs as mix
from sansio import quality
from sansio.images import TransformOptions, transform
from tests import corpus

FIXED = TransformOptions()
AUTO = TransformOptions(quality_auto=True)


def rates(data: bytes, seconds: float, rounds: int = 3) -> tuple[float, float]:
    """Images/s of the fixed and the auto path, measured in turn ``rounds`` times (this machine is
    shared and noisy): the medians."""
    fixed: list[float] = []
    auto: list[float] = []
    for _ in range(rounds):
        for options, found in ((FIXED, fixed), (AUTO, auto)):
            transform(data, options)  # warm
            count, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds / rounds or count < 3:
                transform(data, options)
                count += 1
            found.append(count / elapsed)
    return sorted(fixed)[rounds // 2], sorted(auto)[rounds // 2]


def shared_dir() -> Path:
    return Path(os.environ.get("SHARED_DIR") or Path(__file__).resolve().parents[1] / ".." / "shared")


def varied() -> dict[str, Image.Image]:
    """Images at their output size: the kinds a catalogue holds."""
    size = (800, 600)
    ramp = Image.linear_gradient("L").resize(size)
    product = Image.new("RGB", size, "white")
    ImageDraw.Draw(product).ellipse((200, 90, 600, 510), fill=(200, 40, 40), outline=(90, 10, 10), width=4)
    found = {
        "smooth": Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_90).resize(size), ramp)),
        "texture": corpus.textured(size),
        "text on white": corpus.labelled(size),
        "product on white": product,
    }
    realworld = shared_dir() / "realworld"
    for name in ("exiforient-Landscape_1.jpg", "exiforient-Portrait_1.jpg", "jpegdecoder-ycck.jpg"):
        path = realworld / name
        if path.is_file():  # the real photos, halved as the service would
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                rgb.info = {}  # the CMYK one's profile would otherwise ride along (557 KB)
                found[name] = rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS)
    if len(found) == 4:  # no real photos here: the synthetic one (noise over gradients)
        found["synthetic photo"] = corpus.photo(size)
    return found


def jpeg(image: Image.Image, q: int) -> bytes:
    return transform(
        corpus.encode(image, "PNG"), TransformOptions(scale=1.0, quality=q, output_format="jpeg")
    ).data


def lowest_fixed(images: dict[str, Image.Image], worst: float) -> int:
    """The lowest single quality at which every image scores at least ``worst`` (bisection)."""

    def every(q: int) -> bool:
        return all(quality.score(im, jpeg(im, q)) >= worst for im in images.values())

    lo, hi = 1, 100
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if every(mid) else (mid + 1, hi)
    return lo


def pictures(out_dir: Path) -> None:
    """The README's pictures: crops of the resized image, of auto at the default target, and of a
    low quality, each enlarged 2x (pixel repetition) so that the artefacts can be seen."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = {
        "text": (corpus.labelled((800, 600)), (4, 2, 124, 82), "PNG"),
        "texture": (corpus.textured((800, 600)), (300, 200, 420, 280), "JPEG"),
        "smooth": (varied()["smooth"], (340, 260, 460, 340), "JPEG"),
    }
    for name, (image, box, fmt) in cases.items():
        auto = transform(
            corpus.encode(image, "PNG"), TransformOptions(scale=1.0, quality_auto=True, output_format="jpeg")
        )
        low = jpeg(image, 15)
        panels = [image, Image.open(io.BytesIO(auto.data)), Image.open(io.BytesIO(low))]
        w, h = box[2] - box[0], box[3] - box[1]
        strip = Image.new("RGB", (w * 2 * 3 + 8, h * 2), "white")
        for n, panel in enumerate(panels):
            crop = panel.convert("RGB").crop(box).resize((w * 2, h * 2), Image.Resampling.NEAREST)
            strip.paste(crop, (n * (w * 2 + 4), 0))
        target = out_dir / f"{name}.{fmt.lower().replace('jpeg', 'jpg')}"
        strip.save(target, fmt, **({"quality": 95} if fmt == "JPEG" else {"optimize": True}))
        print(
            f"{target}: auto q{auto.quality} {len(auto.data)} B score {quality.score(image, auto.data):.4f}; "
            f"q15 {len(low)} B score {quality.score(image, low):.4f}; file {target.stat().st_size} B"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench quality")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--pictures", type=Path, help="write the README's pictures there and stop")
    args, _ = parser.parse_known_args(argv)
    if args.pictures:
        pictures(args.pictures)
        return

    print(f"quality=auto cost, 1 core, images/s (target: auto >= 0.5x fixed); metric {quality.METRIC}")
    columns = f"{'fixed q50':>10} {'auto':>8} {'auto/fixed':>10} {'q chosen':>8} {'KB q50':>7} {'KB auto':>7}"
    print(f"{'input':10} {columns}")
    spent_fixed = spent_auto = 0.0
    for label, data in mix().items():
        fixed, auto = rates(data, args.seconds)
        spent_fixed, spent_auto = spent_fixed + 1 / fixed, spent_auto + 1 / auto
        chosen = transform(data, AUTO)
        size_fixed = len(transform(data, FIXED).data)
        print(
            f"{label:10} {fixed:10.1f} {auto:8.1f} {auto / fixed:10.2f} {chosen.quality or '-':>8} "
            f"{size_fixed / 1024:7.0f} {len(chosen.data) / 1024:7.0f}"
        )
    print(f"{'the mix':10} {'':10} {'':8} {spent_fixed / spent_auto:10.2f}   (time for one of each)")
    photo = shared_dir() / "realworld" / "exiforient-Landscape_1.jpg"
    if photo.is_file():  # a camera photo, 1800x1200: not part of the mix, for comparison
        data = photo.read_bytes()
        fixed, auto = rates(data, args.seconds)
        chosen = transform(data, AUTO)
        ratio = auto / fixed
        print(
            f"{'photo 2 MP':10} {fixed:10.1f} {auto:8.1f} {ratio:10.2f} {chosen.quality:>8}  (not in the mix)"
        )

    images = varied()
    print(f"\nbytes on {len(images)} varied images at output size, JPEG, target {quality.DEFAULT_TARGET}")
    print(
        f"{'image':28} {'q auto':>6} {'score':>7} {'KB auto':>8} {'score q50':>9} {'KB q50':>7} "
        f"{'format=auto':>16}"
    )
    totals = {"auto": 0, "q50": 0, "format": 0}
    worst = 1.0
    for name, image in images.items():
        chosen = transform(
            corpus.encode(image, "PNG"), TransformOptions(scale=1.0, quality_auto=True, output_format="jpeg")
        )
        at50 = jpeg(image, 50)
        best_format = transform(
            corpus.encode(image, "PNG"), TransformOptions(scale=1.0, output_format="auto")
        )
        totals["format"] += len(best_format.data)
        score, score50 = quality.score(image, chosen.data), quality.score(image, at50)
        worst = min(worst, score)
        totals["auto"] += len(chosen.data)
        totals["q50"] += len(at50)
        print(
            f"{name:28} {chosen.quality:>6} {score:7.4f} {len(chosen.data) / 1024:8.1f} "
            f"{score50:9.4f} {len(at50) / 1024:7.1f} "
            f"{best_format.format:>5} q{best_format.quality or '-':<3} {len(best_format.data) / 1024:6.1f}"
        )
    best = lowest_fixed(images, worst)
    at_best = sum(len(jpeg(im, best)) for im in images.values())
    worst50 = min(quality.score(im, jpeg(im, 50)) for im in images.values())
    print(f"total: auto {totals['auto'] / 1024:.0f} KB (worst score {worst:.4f})")
    print(f"       output_format=auto {totals['format'] / 1024:.0f} KB (at the same target)")
    print(f"       fixed q50 {totals['q50'] / 1024:.0f} KB (worst score {worst50:.4f})")
    print(
        f"       best single fixed quality reaching auto's worst score everywhere: q{best}, "
        f"{at_best / 1024:.0f} KB; auto/that = {totals['auto'] / at_best:.2f} (target < 1)"
    )


if __name__ == "__main__":
    main()
