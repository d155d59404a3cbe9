"""Pixel modes: the mode the transform resizes in, and transparency laid onto a background.

Pure (no Django, no network); sansio/images.py calls it between decoding and resizing, and
sansio/encoding.py for JPEG.
- ``to_working_mode``: palettes, colour keys, wide or signed samples, floats and CMYK become a mode
  that resizes without artefacts (8-bit grey or RGB, with alpha where the input has transparency),
  with the ICC profile that then describes the pixels.
- ``flatten``: transparency laid onto a background, for JPEG and the preview.
- ``planar``: a TIFF whose samples are stored in separate planes.
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms, ImageMath


def to_working_mode(  # noqa: PLR0911 - one answer per kind of mode
    im: Image.Image, icc: bytes | None
) -> tuple[Image.Image, bytes | None]:
    """A mode that resizes without artefacts, and the ICC profile that then describes its pixels.

    - Palettes and colour-keyed grey or RGB become RGBA (a palette resizes by nearest neighbour; a
      colour key would blur into its neighbours), keeping exactly the keyed pixels transparent.
    - Samples wider than 8 bits are mapped to 8 (a plain convert clips them): unsigned integers by
      their bit depth, floats in 0..1 as 0 = black and 1 = white, other floats and signed integers
      stretched from their own minimum to maximum (they have no black or white of their own).
    - CMYK goes to sRGB through its own profile with a colour-managed transform (a plain convert
      shifts colours), after which the profile is sRGB. Premultiplied alpha is un-premultiplied.
    """
    mode = im.mode
    if mode in ("RGBA", "LA") or (mode in ("RGB", "L") and "transparency" not in im.info):
        return im, icc
    if mode in ("P", "PA", "L", "RGB", "1"):
        return im.convert("RGBA" if im.has_transparency_data else "RGB"), icc
    if mode.startswith("I") or mode == "F":
        grey = _to_8_bits(im)
        key = im.info.get("transparency")
        if isinstance(key, int):
            alpha = ImageMath.lambda_eval(lambda args: args["im"] != key, im=im.convert("I"))
            return Image.merge("LA", (grey, alpha.point(lambda v: v * 255).convert("L"))), icc
        return grey, icc
    if mode == "CMYK":
        if icc:
            return _cmyk_to_srgb(im, icc), _srgb_profile()
        return im.convert("RGB"), None
    return im.convert("RGBA" if im.has_transparency_data else "RGB"), None


def _to_8_bits(im: Image.Image) -> Image.Image:
    """One band of wide samples as 8-bit grey (see to_working_mode for the mapping)."""
    bits = _bits(im)
    if im.mode == "F":
        wide = im
        low, high = _extrema(wide)
        if low >= 0 and high <= 1:
            return wide.point(lambda v: v * 255).convert("L")
    else:
        wide = im.convert("I")
        if bits is not None and not _signed(im):
            scale = 255 / ((1 << bits) - 1)
            return wide.point(lambda v: v * scale).convert("L")
        low, high = _extrema(wide)
    scale = 255 / (float(high - low) or 1.0)
    offset = -float(low) * scale
    return wide.point(lambda v: v * scale + offset).convert("L")


def _extrema(im: Image.Image) -> tuple[float, float]:
    low, high = im.getextrema()  # one band: two numbers
    assert isinstance(low, (int, float)) and isinstance(high, (int, float))
    return low, high


def _bits(im: Image.Image) -> int | None:
    """Bits per sample as the file states them (a 12-bit TIFF comes as 16-bit samples)."""
    tags = getattr(im, "tag_v2", None)
    stated = tags.get(258) if tags is not None else None
    if isinstance(stated, tuple) and stated:
        stated = stated[0]
    if isinstance(stated, int) and 1 <= stated <= 32:
        return stated
    return 16 if im.mode.startswith("I;16") else None


def _signed(im: Image.Image) -> bool:
    tags = getattr(im, "tag_v2", None)
    sample_format = tags.get(339, (1,)) if tags is not None else (1,)
    first = sample_format[0] if isinstance(sample_format, tuple) and sample_format else sample_format
    return im.mode.endswith("S") or first == 2


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _srgb_profile() -> bytes:
    return bytes(_srgb().tobytes())


@functools.lru_cache(maxsize=16)
def _cmyk_transform(icc: bytes) -> ImageCms.ImageCmsTransform:
    # Building a transform costs milliseconds; catalogues reuse a handful of CMYK profiles.
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.buildTransform(source, _srgb(), "CMYK", "RGB")


def _cmyk_to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    try:
        return ImageCms.applyTransform(im, _cmyk_transform(icc)) or im.convert("RGB")
    except (ImageCms.PyCMSError, OSError):
        return im.convert("RGB")  # an unreadable profile: fall back rather than fail the image


def flatten(im: Image.Image, background: tuple[int, ...]) -> Image.Image:
    if im.mode in ("RGBA", "LA"):
        base = Image.new("RGB", im.size, background)
        base.paste(im.convert("RGBA"), mask=im.getchannel("A"))
        return base
    return im if im.mode in ("RGB", "L") else im.convert("RGB")


def planar(im: Image.Image) -> bool:
    """A TIFF whose samples are stored in separate planes (Pillow misreads grey+alpha ones)."""
    tags = getattr(im, "tag_v2", None)
    return tags is not None and tags.get(284, 1) == 2
