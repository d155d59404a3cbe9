"""The image transform: bytes in, bytes out."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

OUTPUT_FORMATS = ("original", "jpeg", "png", "webp", "avif")


class ImageRejected(ValueError):
    """The input is not an image we can or will process; the message is shown to the user."""


@dataclass(frozen=True)
class TransformOptions:
    scale: float = 0.5
    quality: int = 50
    output_format: str = "original"
    max_pixels: int = 50_000_000
    max_frames: int = 200
    background: tuple[int, int, int] = (255, 255, 255)


@dataclass(frozen=True)
class TransformResult:
    data: bytes
    format: str  # Pillow's name: JPEG, PNG, WEBP, GIF, AVIF
    extension: str  # jpg, png, webp, gif, avif
    content_type: str
    width: int
    height: int
    input_format: str
    input_width: int
    input_height: int


_PILLOW_TO_EXT = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}


def transform(data: bytes, options: TransformOptions = TransformOptions()) -> TransformResult:
    """Placeholder until the image engine lands: orient, scale, re-encode."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            input_format = im.format or "UNKNOWN"
            in_w, in_h = im.size
            im.load()
            oriented = ImageOps.exif_transpose(im)
    except Exception as exc:
        raise ImageRejected(f"not a readable image: {exc}") from exc
    out_format = input_format if input_format in _PILLOW_TO_EXT else "PNG"
    size = (max(1, round(oriented.width * options.scale)), max(1, round(oriented.height * options.scale)))
    resized = oriented.resize(size, Image.Resampling.LANCZOS)
    if out_format == "JPEG" and resized.mode not in ("RGB", "L"):
        resized = resized.convert("RGB")
    buf = io.BytesIO()
    resized.save(buf, out_format, quality=options.quality)
    ext, content_type = _PILLOW_TO_EXT[out_format]
    return TransformResult(buf.getvalue(), out_format, ext, content_type, *size, input_format, in_w, in_h)
