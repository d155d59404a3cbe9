"""Checks of one transform output against Pillow's own reading of its input (used by the image tests)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageOps, ImageSequence, ImageStat

from sansio.imagefaults import png_without_metadata

PYTHON_TEXT = (
    "Error",
    "Exception",
    "<_io",
    "bytes not processed",
    "decompression bomb",
    "DOS attack",
    "errno",
)


def assert_plain(message: str) -> None:
    """A refusal's message is words for people: no exception text, no Pillow message."""
    assert message and not any(text in message for text in PYTHON_TEXT), message


def upright(data: bytes) -> tuple[Image.Image, str, int]:
    """Pillow's own reading of the input, shown upright (Pillow orients TIFFs on load itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            im = Image.open(io.BytesIO(data))
        except Exception:  # a PNG with broken metadata: the reference is its picture without it
            im = Image.open(io.BytesIO(png_without_metadata(data, keep_sound=False) or b""))
        im.load()
        frames = getattr(im, "n_frames", 1)
        try:
            return ImageOps.exif_transpose(im), str(im.format), frames
        except Exception:  # a malformed EXIF block: nothing to orient by
            return im, str(im.format), frames


@dataclass(frozen=True)
class Expect:
    """What a file is there to prove, beyond what every output must do."""

    animated: bool = False  # the output must play more than one frame (or merged identical ones)
    transparent: bool = False  # some pixels must come out transparent
    wide_samples: bool = False  # float or signed samples: mapped to a visible range, not a black page
    compare_pixels: bool = True  # False where Pillow's own reading is no reference (wide samples)
    same_frames: bool = False  # identical frames, which the encoder merges into one still


def check_output(name: str, data: bytes, out_data: bytes, out_format: str, expect: Expect) -> None:
    """The output decodes, has the contract's size and format, is the input upright, keeps what it must."""
    source, source_format, frames = upright(data)
    out = Image.open(io.BytesIO(out_data))
    out.load()
    assert out.format == out_format
    kept = source_format if source_format in ("JPEG", "PNG", "WEBP", "GIF") else None
    if source_format == "MPO":
        kept = "JPEG"
    assert out.format == (kept or ("PNG" if source.has_transparency_data else "JPEG")), name
    assert out.size == tuple(max(1, round(side * 0.5)) for side in source.size), (name, source.size, out.size)
    if expect.wide_samples:
        low, high = out.convert("L").getextrema()
        assert not isinstance(low, tuple) and not isinstance(high, tuple)  # one band: numbers
        assert high - low > 100, f"{name}: samples not mapped to a visible range ({low}..{high})"
    if expect.compare_pixels and not expect.wide_samples:
        noise = 48 if min(out.size) < 4 else 24  # a few pixels of noise average out unevenly
        off = difference(source, out)
        assert off < noise, f"{name} ({off:.0f}): the output does not look like the upright input"
    transparent = expect.transparent or (source.has_transparency_data and alpha_min(source) == 0)
    if transparent and out.format != "JPEG":
        assert alpha_min(out) < 128, f"{name}: transparency lost"
    if source_format in ("GIF", "WEBP", "PNG") and frames > 1:
        check_animation(name, data, out, same_frames=expect.same_frames)
    else:
        assert not expect.animated, f"{name}: expected to be animated"


def alpha_min(im: Image.Image) -> int:
    low, _ = im.convert("RGBA").getchannel("A").getextrema()
    assert not isinstance(low, tuple)  # one band: a number
    return int(low)


def on_white(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I;16"):  # Pillow's convert clips 16-bit samples: the reference scales them
        key = im.info.get("transparency")
        grey = im.convert("I").point(lambda v: v / 257).convert("L")
        if key is None:
            return grey.convert("RGB")
        alpha = Image.new("L", im.size)
        alpha.putdata([0 if v == key else 255 for v in im.convert("I").get_flattened_data()])
        im = Image.merge("LA", (grey, alpha))
    rgba = im.convert("RGBA")
    base = Image.new("RGB", rgba.size, (255, 255, 255))
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def difference(source: Image.Image, out: Image.Image) -> float:
    """Mean difference per channel (0-255) of the output and the input brought to its size."""
    reference = on_white(source).resize(out.size, Image.Resampling.BOX)
    stat = ImageStat.Stat(ImageChops.difference(reference, on_white(out)))
    return sum(stat.mean) / len(stat.mean)


def timing(im: Image.Image) -> tuple[int, list[int]]:
    durations = []
    for frame in ImageSequence.Iterator(im):
        before = frame.info.get("duration", 0)  # APNG: loading reads ahead to the next frame's
        frame.load()
        after = frame.info.get("duration", 0)  # WebP: stated once the frame is loaded
        durations.append(int(after if im.format == "WEBP" else before))
    return len(durations), durations


def check_animation(name: str, data: bytes, out: Image.Image, *, same_frames: bool) -> None:
    source = Image.open(io.BytesIO(data))
    frames, durations = timing(source)
    out_frames, out_durations = timing(out)
    assert out_frames > 1 or same_frames, f"{name}: animation lost"
    assert sum(out_durations) == sum(durations), f"{name}: timing {durations} became {out_durations}"
    if out_frames == frames:
        assert out_durations == durations, f"{name}: timing {durations} became {out_durations}"
    assert out.info.get("loop") == source.info.get("loop"), f"{name}: loop count changed"
