"""The sample catalogue: a few images drawn here, so a first run needs no image host and no network.

The service serves them at /samples/ (development only) and `manage.py demo` uploads a CSV of them.
They are drawn, not stored: gradients, shapes and fine stripes, so compression has something to do
and its effect is visible. Each name always gives the same bytes.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Sample:
    name: str  # the file name under /samples/
    product: str  # what the CSV calls it
    size: tuple[int, int]
    format: str  # Pillow's name
    hue: tuple[int, int, int]  # the object's colour


SAMPLES = (
    Sample("armchair.jpg", "Armchair", (1600, 1200), "JPEG", (176, 58, 46)),
    Sample("armchair-side.jpg", "Armchair", (1200, 1600), "JPEG", (150, 50, 40)),
    Sample("lamp.png", "Table lamp", (900, 900), "PNG", (212, 160, 23)),
    Sample("rug.webp", "Wool rug", (1400, 1000), "WEBP", (40, 116, 166)),
    Sample("vase.png", "Glass vase", (800, 1000), "PNG", (20, 143, 119)),
    Sample("clock.gif", "Wall clock", (480, 480), "GIF", (90, 90, 90)),
    Sample("shelf.jpg", "Bookshelf", (1280, 960), "JPEG", (110, 76, 50)),
)
BY_NAME = {sample.name: sample for sample in SAMPLES}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
# Two URLs that fail on purpose, so the first run also shows what a failure looks like.
MISSING = "discontinued.jpg"  # answered 404
NOT_AN_IMAGE = "notes.txt"  # answered as text/plain
NOT_AN_IMAGE_BODY = b"This is a text file, not an image.\n"


def catalogue_rows(base_url: str) -> list[list[str]]:
    """The sample CSV's rows, header first: products with one to three images, two failing on purpose."""
    folder = f"{base_url.rstrip('/')}/samples/"

    def url(name: str) -> str:
        return folder + name

    return [
        ["S. No.", "Product Name", "Input Image Urls"],
        ["1", "Armchair", f"{url('armchair.jpg')},{url('armchair-side.jpg')}"],
        ["2", "Table lamp", url("lamp.png")],
        ["3", "Wool rug", url("rug.webp")],
        ["4", "Glass vase", f"{url('vase.png')},{url(NOT_AN_IMAGE)}"],
        ["5", "Wall clock", url("clock.gif")],
        ["6", "Bookshelf", f"{url('shelf.jpg')},{url(MISSING)}"],
    ]


@functools.lru_cache(maxsize=len(SAMPLES))
def sample_image(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of a sample, or None for a name that is not one."""
    sample = BY_NAME.get(name)
    if sample is None:
        return None
    if sample.format == "GIF":
        frames = [_draw(sample, turn=n / 8) for n in range(8)]
        buf = io.BytesIO()
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
        return buf.getvalue(), CONTENT_TYPES["GIF"]
    image = _draw(sample)
    buf = io.BytesIO()
    if sample.format == "JPEG":
        image.convert("RGB").save(buf, "JPEG", quality=92)
    elif sample.format == "WEBP":
        image.save(buf, "WEBP", quality=90)
    else:
        image.save(buf, "PNG")
    return buf.getvalue(), CONTENT_TYPES[sample.format]


def _draw(sample: Sample, turn: float = 0.0) -> Image.Image:
    """A lit backdrop, the object's shape with a shadow, and fine stripes that show compression."""
    w, h = sample.size
    transparent = sample.name == "vase.png"  # one with alpha, as many product shots have
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    if not transparent:
        backdrop = Image.linear_gradient("L").resize((w, h)).point(lambda v: 255 - v // 4)
        image = Image.merge(
            "RGBA", (backdrop, backdrop, backdrop.point(lambda v: min(255, v + 8)), _solid(w, h))
        )
    draw = ImageDraw.Draw(image)
    r, g, b = sample.hue
    cx, cy, size = w // 2, h // 2, min(w, h) // 3
    draw.ellipse((cx - size, cy + size - size // 6, cx + size, cy + size + size // 6), fill=(0, 0, 0, 60))
    draw.rounded_rectangle(
        (cx - size, cy - size, cx + size, cy + size),
        radius=size // 4,
        fill=(r, g, b, 255),
        outline=(0, 0, 0, 255),
        width=4,
    )
    for n, y in enumerate(range(cy - size + 12, cy + size - 8, 6)):  # fine stripes: detail to keep
        shade = (min(255, r + 60), min(255, g + 60), min(255, b + 60), 255) if n % 2 else (r, g, b, 255)
        draw.line((cx - size + 12, y, cx + size - 12, y), fill=shade, width=2)
    angle = 360 * turn
    draw.pieslice(
        (cx - size // 2, cy - size // 2, cx + size // 2, cy + size // 2),
        angle,
        angle + 60,
        fill=(255, 255, 255, 230),
    )
    return image


def _solid(w: int, h: int) -> Image.Image:
    return Image.new("L", (w, h), 255)
