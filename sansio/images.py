"""The image transform: bytes in, bytes out (no Django, no network).

Decode (header checked first: pixel and frame caps), apply EXIF orientation, scale, re-encode.
- JPEG inputs decode straight at reduced size (libjpeg DCT scaling via ``draft``), then an exact
  LANCZOS resize to the rounded target; other inputs use ``reduce`` when the scale is exactly 1/2.
- ``original`` keeps JPEG, PNG, WebP and GIF; anything else becomes PNG (transparency) or JPEG.
- Transparency is kept where the output has it, flattened onto ``background`` for JPEG.
- Animated GIF/WebP: every frame resized, durations and loop kept, up to ``max_frames``.
- PNG is lossless: ``quality`` does not apply to it (Pillow ignores it there too).
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass, replace

from PIL import Image, ImageCms, ImageSequence

from sansio import quality as per_image

OUTPUT_FORMATS = ("original", "jpeg", "png", "webp", "avif", "auto")
INPUT_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "MPO"]
_KEPT = {"JPEG", "PNG", "WEBP", "GIF"}
_BY_OPTION = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
_EXTENSIONS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "AVIF": ("avif", "image/avif"),
}


# EXIF orientation -> the transposition that shows the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# Encoder settings, measured on this machine's kind (2 cores) with `make bench` inputs:
# - JPEG optimize (Huffman tables per image): -42 % bytes for +1.6 ms on a 1500x1000 output.
# - PNG compress_level 3: 30 ms against 97 ms at Pillow's default 6, for +6 % bytes (level 1: 18 ms,
#   +11 %; 9: 883 ms, -5 %). PNG stays lossless: "quality" does not apply to it (Pillow ignores it
#   too); palette quantization would save ~75 % but changes pixels, so it is not done silently.
# - WebP method 0: 40 ms against 82 ms at method 4, for +4 % bytes.
# - AVIF under output_format=auto, which encodes it up to four times: libavif speed 10, 11 ms
#   against 102 ms at the default 6 on a 0.25 MP photo, for +11 % bytes (output_format=avif keeps 6).
JPEG_OPTIMIZE = True
AVIF_AUTO_SPEED = 10
PNG_COMPRESS_LEVEL = 3
WEBP_METHOD = 0


class ImageRejected(ValueError):
    """The input is not an image we can or will process; the message is shown to the user."""


@dataclass(frozen=True)
class TransformOptions:
    scale: float = 0.5
    quality: int = 50
    output_format: str = "original"
    max_pixels: int = 50_000_000
    max_frames: int = 200
    background: tuple[int, ...] = (255, 255, 255)  # RGB
    # Quality per image (sansio/quality.py): search for the target instead of using ``quality``,
    # and/or keep each output within a byte budget. ``output_format="auto"`` implies the search.
    quality_auto: bool = False
    quality_target: float = per_image.DEFAULT_TARGET
    max_bytes: int | None = None


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
    quality: int | None = None  # the encoder quality used; None where it does not apply (lossless)
    score: float | None = None  # the metric reached against the resized image, where searched
    warning: str = ""  # e.g. no output fits max_bytes


def transform(data: bytes, options: TransformOptions = TransformOptions()) -> TransformResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(f"image is too large to decode safely: {exc}") from None
        except Exception as exc:
            raise ImageRejected(
                "not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF)"
            ) from exc
        with im:
            return _transform_open(im, options)


def _transform_open(im: Image.Image, options: TransformOptions) -> TransformResult:
    input_format = "JPEG" if im.format == "MPO" else (im.format or "UNKNOWN")
    in_w, in_h = im.size
    megapixels = in_w * in_h
    if megapixels > options.max_pixels:
        limit = f"{options.max_pixels / 1e6:g} MP"
        raise ImageRejected(f"image is {in_w}x{in_h} = {megapixels / 1e6:.0f} MP, over the {limit} limit")
    frames = getattr(im, "n_frames", 1)
    if frames > options.max_frames:
        raise ImageRejected(f"image has {frames} frames, over the {options.max_frames} frame limit")
    out_format = _output_format(im, input_format, options.output_format)
    animated = frames > 1 and out_format in ("GIF", "WEBP") and input_format in ("GIF", "WEBP")
    try:
        if animated:  # encoded once at ``quality``: no search, but a budget it misses is said
            result = _animated(im, input_format, out_format, options)
            if options.max_bytes is not None and len(result.data) > options.max_bytes:
                what = f"an animation, {out_format} quality {options.quality}"
                return replace(
                    result, warning=per_image.over_budget(options.max_bytes, len(result.data), what)
                )
            return result
        orientation = im.getexif().get(0x0112, 1)
        target = _target_size(im.size, orientation, options.scale)
        stored = target if orientation not in (5, 6, 7, 8) else (target[1], target[0])
        if input_format == "JPEG" and im.mode in ("RGB", "L", "CMYK"):
            im.draft(im.mode, stored)  # libjpeg decodes at the smallest DCT scale still >= stored
        im.load()
        frame, icc = _to_working_mode(im, im.info.get("icc_profile"))
        if frame.size != stored:
            exact_half = frame.width == stored[0] * 2 and frame.height == stored[1] * 2
            frame = frame.reduce(2) if exact_half else frame.resize(stored, Image.Resampling.LANCZOS)
        if orientation in _TRANSPOSE:  # orient the small image, not the large one
            frame = frame.transpose(_TRANSPOSE[orientation])
    except ImageRejected:
        raise
    except Exception as exc:
        raise ImageRejected(f"the image could not be decoded ({type(exc).__name__}: {exc})") from exc
    if options.quality_auto or options.max_bytes is not None or options.output_format == "auto":
        return _per_image(frame, out_format, options, icc, (input_format, in_w, in_h))
    data = _encode(frame, out_format, options, icc)
    ext, content_type = _EXTENSIONS[out_format]
    used = options.quality if out_format in per_image.LOSSY else None
    return TransformResult(
        data, out_format, ext, content_type, *frame.size, input_format, in_w, in_h, quality=used
    )


def _per_image(
    frame: Image.Image,
    out_format: str,
    options: TransformOptions,
    icc: bytes | None,
    source: tuple[str, int, int],
) -> TransformResult:
    """Quality and format chosen for this image by sansio.quality, through ``_encode`` as the seam."""

    def encode(im: Image.Image, fmt: str, quality: int | None) -> bytes:
        extra = {"icc_profile": icc} if icc else {}
        if quality is None and fmt == "WEBP":
            buf = io.BytesIO()
            im.save(buf, "WEBP", lossless=True, method=WEBP_METHOD, **extra)
            return buf.getvalue()
        if fmt == "AVIF" and auto:
            buf = io.BytesIO()
            im.save(buf, "AVIF", quality=quality or options.quality, speed=AVIF_AUTO_SPEED, **extra)
            return buf.getvalue()
        return _encode(im, fmt, replace(options, quality=quality or options.quality), icc)

    auto = options.output_format == "auto"
    if auto:
        formats = [f for f in per_image.LOSSY if f != "JPEG" or not per_image.has_alpha(frame)]
    else:
        formats = [out_format]
    goal = per_image.Goal(
        quality=options.quality,
        target=options.quality_target if options.quality_auto or auto else None,
        max_bytes=options.max_bytes,
    )
    lossless = per_image.LOSSLESS if auto else ()
    choice = per_image.choose(frame, formats, goal, encode, options.background, lossless=lossless)
    ext, content_type = _EXTENSIONS[choice.format]
    input_format, in_w, in_h = source
    return TransformResult(
        choice.data,
        choice.format,
        ext,
        content_type,
        *frame.size,
        input_format,
        in_w,
        in_h,
        quality=choice.quality,
        score=choice.score,
        warning=choice.warning,
    )


def _target_size(size: tuple[int, int], orientation: int, scale: float) -> tuple[int, int]:
    w, h = size
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return max(1, round(w * scale)), max(1, round(h * scale))


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode in ("P", "L", "RGB") and "transparency" in im.info)


def _output_format(im: Image.Image, input_format: str, option: str) -> str:
    if option == "auto":  # the format is chosen per image; an animation stays an animated WebP
        return "WEBP"
    if option != "original":
        return _BY_OPTION[option]
    if input_format in _KEPT:
        return input_format
    return "PNG" if _has_alpha(im) else "JPEG"


def _to_working_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """A mode that resizes without artefacts, and the ICC profile that then describes its pixels.

    Palettes become RGB(A) (a palette resizes by nearest neighbour), 16-bit greyscale is scaled to
    8 bits (a plain convert clips it to white), and CMYK goes to sRGB through its own profile with
    a colour-managed transform (a plain convert shifts colours), after which the profile is sRGB.
    """
    if im.mode in ("RGB", "RGBA", "L", "LA"):
        return im, icc
    if im.mode == "P" or (im.mode in ("L", "RGB") and "transparency" in im.info):
        return im.convert("RGBA"), icc
    if im.mode.startswith("I;16") or im.mode == "I":
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L"), icc
    if im.mode == "CMYK":
        if icc:
            return _cmyk_to_srgb(im, icc), _srgb_profile()
        return im.convert("RGB"), None
    return im.convert("RGBA" if "A" in im.getbands() else "RGB"), None


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


def _flatten(im: Image.Image, background: tuple[int, ...]) -> Image.Image:
    if im.mode in ("RGBA", "LA"):
        base = Image.new("RGB", im.size, background)
        base.paste(im.convert("RGBA"), mask=im.getchannel("A"))
        return base
    return im if im.mode in ("RGB", "L") else im.convert("RGB")


def _encode(im: Image.Image, out_format: str, options: TransformOptions, icc: bytes | None) -> bytes:
    buf = io.BytesIO()
    extra: dict[str, object] = {}
    if icc:
        extra["icc_profile"] = icc
    if out_format == "JPEG":
        flat = _flatten(im, options.background)
        flat.save(buf, "JPEG", quality=options.quality, optimize=JPEG_OPTIMIZE, **extra)
    elif out_format == "PNG":
        im.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL, **extra)
    elif out_format == "WEBP":
        im.save(buf, "WEBP", quality=options.quality, method=WEBP_METHOD, **extra)
    elif out_format == "GIF":
        im.save(buf, "GIF")
    else:
        im.save(buf, out_format, quality=options.quality, **extra)
    return buf.getvalue()


def _animated(
    im: Image.Image, input_format: str, out_format: str, options: TransformOptions
) -> TransformResult:
    target = _target_size(im.size, 1, options.scale)
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(im):
        durations.append(int(frame.info.get("duration", im.info.get("duration", 100))))
        frames.append(frame.convert("RGBA").resize(target, Image.Resampling.LANCZOS))
    buf = io.BytesIO()
    save: dict[str, object] = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations,
        "loop": im.info.get("loop", 0),
    }
    if out_format == "GIF":
        save["disposal"] = 2
    else:
        save["quality"] = options.quality
    frames[0].save(buf, out_format, **save)
    ext, content_type = _EXTENSIONS[out_format]
    used = options.quality if out_format == "WEBP" else None
    return TransformResult(
        buf.getvalue(), out_format, ext, content_type, *target, input_format, *im.size, quality=used
    )
