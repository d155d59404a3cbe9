"""The image transform: bytes in, bytes out (no Django, no network).

Decode (header checked first: pixel and frame caps), apply EXIF orientation, scale, re-encode.
The pixels are brought to a mode that resizes well by sansio/pixelmodes.py, and written by
sansio/encoding.py (encoder settings); this module decides what is done to them, in what order.
- JPEG inputs decode straight at reduced size (libjpeg DCT scaling via ``draft``), then an exact
  LANCZOS resize to the rounded target; other inputs use ``reduce`` when the scale is exactly 1/2.
- ``original`` keeps JPEG, PNG, WebP and GIF; anything else becomes PNG (transparency) or JPEG.
- Transparency is kept where the output has it, flattened onto ``background`` for JPEG.
- Animated GIF, WebP and PNG (APNG): every frame resized, durations and loop count kept, up to
  ``max_frames``, when the output can animate (GIF, WebP, PNG); otherwise the first frame. Multi-page
  TIFF, animated AVIF and MPO give their first image.
- PNG is lossless: ``quality`` does not apply to it (Pillow ignores it there too).
- A file that cannot be processed raises ImageRejected with a reason code and a plain message
  (sansio/imagefaults.py says what is wrong); Pillow's own text never reaches the user.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

from PIL import Image, ImageSequence

from sansio import encoding
from sansio import quality as per_image
from sansio.encoding import EncodeFailed
from sansio.imagefaults import (
    ImageRejected,
    avif_size,
    explain,
    not_readable,
    png_fault,
    png_without_metadata,
    sniff,
)
from sansio.pixelmodes import flatten, planar, to_working_mode
from sansio.reasons import Reason

__all__ = ["EncodeFailed", "ImageRejected", "TransformOptions", "TransformResult", "transform"]

OUTPUT_FORMATS = ("original", "jpeg", "png", "webp", "avif", "auto")
# What Pillow may open a file as, by the format its first bytes name (an MPO starts as a JPEG).
_PILLOW_FORMATS = {fmt: [fmt] for fmt in ("PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")} | {
    "JPEG": ["JPEG", "MPO"]
}
_ANIMATED = {"GIF", "WEBP", "PNG"}  # inputs whose frames are an animation, and outputs that can play one
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

PREVIEW_QUALITY = 90  # the "before" preview: fine enough that artefacts seen beside it are the output's


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
    """The output for ``data``; ImageRejected (with a reason code) when it cannot be made."""
    fmt = sniff(data)
    if fmt is None:
        raise not_readable(data)
    if fmt == "PNG":  # Pillow checks no checksum of the image data: a damaged PNG must not pass
        fault = png_fault(data)
        if fault is not None:
            raise fault
    try:
        return _transform_as(data, fmt, options)
    except (ImageRejected, EncodeFailed):
        raise
    except Exception as exc:  # decoding failed: what is wrong with the file is told below
        failure = exc
    if fmt == "PNG":  # as libpng: damaged or malformed metadata is dropped, the picture kept
        for keep_sound in (True, False):
            repaired = png_without_metadata(data, keep_sound=keep_sound)
            if repaired is None:
                continue
            try:
                return _transform_as(repaired, fmt, options)
            except (ImageRejected, EncodeFailed):
                raise
            except Exception:  # noqa: S112  # the original failure explains it best
                continue
    if fmt == "AVIF" and (size := avif_size(data)) is not None:
        _check_pixels(size, options)  # libavif refuses sizes over its own limit without saying so
    raise explain(data, fmt, failure) from failure


def _transform_as(data: bytes, fmt: str, options: TransformOptions) -> TransformResult:
    with _opened(data, fmt, options) as im:
        return _transform_open(im, fmt, options)


@contextlib.contextmanager
def _opened(data: bytes, fmt: str, options: TransformOptions) -> Iterator[Image.Image]:
    """``data`` opened as ``fmt`` with its pixels within ``options``' limit (ImageRejected past it,
    Pillow's own bomb check included), and only the warnings that matter turned to errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # e.g. "Corrupt EXIF data": the EXIF is not used
        try:
            im = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[fmt])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            _check_pixels(_size_unchecked(data, fmt), options)
            raise ImageRejected(Reason.IMAGE_TOO_LARGE, "image is too large to decode safely") from None
        with im:
            _check_pixels(im.size, options)
            yield im


def _size_unchecked(data: bytes, fmt: str) -> tuple[int, int]:
    """The size a header states, read without Pillow's bomb check (Image.open's), to name it."""
    if fmt == "GIF":  # the logical screen, before Pillow reads any frame
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    opener = Image.OPEN[fmt][0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = opener(io.BytesIO(data))  # type: ignore[call-arg]  # every plugin class takes a file
    except Exception:  # then the size is not named
        return (0, 0)
    return im.size


def _check_pixels(size: tuple[int, int], options: TransformOptions) -> None:
    width, height = size
    if width * height > options.max_pixels:
        limit = f"{options.max_pixels / 1e6:g} MP"
        raise ImageRejected(
            Reason.IMAGE_TOO_LARGE,
            f"image is {width}x{height} = {width * height / 1e6:.0f} MP, over the {limit} limit",
        )


def _orientation(im: Image.Image, fmt: str) -> int:
    """The EXIF orientation still to apply: none for TIFF (Pillow applies it on load), and none
    when the EXIF cannot be read (a malformed EXIF chunk does not make the picture unusable)."""
    if fmt == "TIFF":
        return 1
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # Pillow raises many kinds at a malformed EXIF block
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _transform_open(im: Image.Image, input_format: str, options: TransformOptions) -> TransformResult:
    in_w, in_h = im.size
    out_format = _output_format(im, input_format, options.output_format)
    frames = _frames_out(im, input_format, out_format)
    if frames > 1:
        if frames > options.max_frames:
            raise ImageRejected(
                Reason.IMAGE_TOO_LARGE,
                f"image has {frames} frames, over the {options.max_frames} frame limit",
            )
        result = _animated(im, input_format, out_format, options)
        if options.max_bytes is not None and len(result.data) > options.max_bytes:
            # encoded once at ``quality``: no search, but a budget it misses is said
            what = f"an animation, {out_format} quality {options.quality}"
            return replace(result, warning=per_image.over_budget(options.max_bytes, len(result.data), what))
        return result
    frame, icc = _upright_frame(im, input_format, options)
    if options.quality_auto or options.max_bytes is not None or options.output_format == "auto":
        try:
            chosen = _per_image(frame, out_format, options, icc, (input_format, in_w, in_h))
        except Exception as exc:
            raise EncodeFailed(f"the {out_format} output could not be encoded") from exc
        return chosen
    try:
        data = encoding.encode(frame, out_format, options.quality, options.background, icc)
    except Exception as exc:
        raise EncodeFailed(f"the {out_format} output could not be encoded") from exc
    ext, content_type = _EXTENSIONS[out_format]
    used = options.quality if out_format in per_image.LOSSY else None
    return TransformResult(
        data, out_format, ext, content_type, *frame.size, input_format, in_w, in_h, quality=used
    )


def _upright_frame(
    im: Image.Image, input_format: str, options: TransformOptions
) -> tuple[Image.Image, bytes | None]:
    """A still image decoded, in its working mode, resized and upright: what the encoder is given,
    and the ICC profile that describes its pixels."""
    orientation = _orientation(im, input_format)
    target = _target_size(im.size, orientation, options.scale)
    stored = target if orientation not in (5, 6, 7, 8) else (target[1], target[0])
    if input_format == "JPEG" and im.mode in ("RGB", "L", "CMYK"):
        im.draft(im.mode, stored)  # libjpeg decodes at the smallest DCT scale still >= stored
    im.load()
    if im.mode == "La" and planar(im):
        raise ImageRejected(
            Reason.UNSUPPORTED, "a TIFF of grey and premultiplied alpha in separate planes: not supported"
        )
    frame, icc = to_working_mode(im, im.info.get("icc_profile"))
    if frame.size != stored:
        exact_half = frame.width == stored[0] * 2 and frame.height == stored[1] * 2
        frame = frame.reduce(2) if exact_half else frame.resize(stored, Image.Resampling.LANCZOS)
    if orientation in _TRANSPOSE:  # orient the small image, not the large one
        frame = frame.transpose(_TRANSPOSE[orientation])
    return frame, icc


def before_picture(data: bytes, options: TransformOptions, side: int) -> bytes:
    """The "before" picture the comparison page shows beside the output, so it never hotlinks an
    original: made on demand from the input (catalog/services/previews.py), not for every image.

    It is the frame the encoder is given for ``data`` under ``options`` (decoded, upright, resized;
    an animation's first frame), so a side-by-side shows exactly what the output's compression did:
    a high-quality JPEG at most ``side`` px on its longer side (transparency on the background), the
    frame itself when it fits, else the frame reduced by a whole factor (a box filter). Made for every
    image, it cost 2.5 ms of the worker's 28 ms an image and a 60-220 KB file beside each output,
    for pictures a person looks at a few of (README, far hosts). ImageRejected when it cannot be made.
    """
    fmt = sniff(data)
    if fmt is None:
        raise not_readable(data)
    with _opened(data, fmt, options) as im:
        if _frames_out(im, fmt, _output_format(im, fmt, options.output_format)) > 1:
            frame = _animation_frame(im, _target_size(im.size, 1, options.scale))
        else:
            frame, _ = _upright_frame(im, fmt, options)
    small = flatten(frame, options.background)
    factor = -(-max(small.size) // side)  # the least whole factor that fits
    if factor > 1:
        small = small.reduce(factor)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=PREVIEW_QUALITY)
    return buf.getvalue()


def _per_image(
    frame: Image.Image,
    out_format: str,
    options: TransformOptions,
    icc: bytes | None,
    source: tuple[str, int, int],
) -> TransformResult:
    """Quality and format chosen for this image by sansio.quality, through ``encoding.encode`` as the seam."""

    def encode(im: Image.Image, fmt: str, quality: int | None) -> bytes:
        extra = {"icc_profile": icc} if icc else {}
        if quality is None and fmt == "WEBP":
            buf = io.BytesIO()
            im.save(buf, "WEBP", lossless=True, method=encoding.WEBP_METHOD, **extra)
            return buf.getvalue()
        if fmt == "AVIF" and auto:
            buf = io.BytesIO()
            im.save(buf, "AVIF", quality=quality or options.quality, speed=encoding.AVIF_AUTO_SPEED, **extra)
            return buf.getvalue()
        return encoding.encode(im, fmt, quality or options.quality, options.background, icc)

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


def _output_format(im: Image.Image, input_format: str, option: str) -> str:
    if option == "auto":  # the format is chosen per image; an animation stays an animated WebP
        return "WEBP"
    if option != "original":
        return _BY_OPTION[option]
    if input_format in _KEPT:
        return input_format
    return "PNG" if im.has_transparency_data else "JPEG"


def _frames_out(im: Image.Image, input_format: str, out_format: str) -> int:
    """How many frames the output has: the input's when both formats animate, else one."""
    frames: int = getattr(im, "n_frames", 1) if input_format in _ANIMATED else 1
    return frames if out_format in _ANIMATED else 1


def _animation_frame(frame: Image.Image, target: tuple[int, int]) -> Image.Image:
    return frame.convert("RGBA").resize(target, Image.Resampling.LANCZOS)


def _animated(
    im: Image.Image, input_format: str, out_format: str, options: TransformOptions
) -> TransformResult:
    """Every frame resized, with its own duration; the loop count carried over (a GIF without
    one: see ``encoding.encode_animation``)."""
    target = _target_size(im.size, 1, options.scale)
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(im):
        # WebP states a frame's duration once the frame is loaded; APNG's loading reads ahead and
        # leaves the next frame's there: so WebP's is read after the load, the others' before.
        duration = frame.info.get("duration", 100)
        frames.append(_animation_frame(frame, target))
        if input_format == "WEBP":
            duration = frame.info.get("duration", 100)
        durations.append(int(duration))
    default_image = input_format == "PNG" and bool(im.info.get("default_image"))
    data = encoding.encode_animation(
        frames, durations, out_format, options.quality, loop=im.info.get("loop"), default_image=default_image
    )
    ext, content_type = _EXTENSIONS[out_format]
    used = options.quality if out_format == "WEBP" else None
    return TransformResult(data, out_format, ext, content_type, *target, input_format, *im.size, quality=used)
