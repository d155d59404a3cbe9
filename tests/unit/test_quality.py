"""The per-image search (sansio/quality.py): target, budget, formats, transparency, encoder calls."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest
from PIL import Image, ImageDraw

from sansio import quality
from sansio.images import TransformOptions, transform
from tests import corpus


@dataclass
class CountingEncoder:
    """The seam: plain Pillow encodes, each call recorded as (size, format, quality)."""

    calls: list[tuple[tuple[int, int], str, int | None]] = field(default_factory=list)

    def __call__(self, im: Image.Image, fmt: str, q: int | None) -> bytes:
        self.calls.append((im.size, fmt, q))
        return encode(im, fmt, q)


def encode(im: Image.Image, fmt: str, q: int | None) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.convert("RGB").save(buf, "JPEG", quality=q, optimize=True)
    elif q is None:
        im.save(buf, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    else:
        im.save(buf, fmt, quality=q, **({"method": 0} if fmt == "WEBP" else {}))
    return buf.getvalue()


def whole_score(reference: Image.Image, data: bytes) -> float:
    return quality.score(reference, data)


IMAGES = {
    "texture": lambda: corpus.textured((400, 300)),
    "text": lambda: corpus.labelled((400, 300)),
    "large texture": lambda: corpus.textured((1200, 800)),
}


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_reaches_the_target_with_the_lowest_quality_it_tried(name: str, fmt: str) -> None:
    image = IMAGES[name]()
    encoder = CountingEncoder()
    choice = quality.choose(image, [fmt], quality.Goal(target=0.99), encoder)
    assert choice.reached and choice.score is not None and choice.score >= 0.99
    assert choice.format == fmt and choice.quality is not None
    tried_below = [q for size, _, q in encoder.calls if q is not None and q < choice.quality]
    for q in tried_below:  # every lower quality it encoded missed the target
        if image.width * image.height <= quality.PROXY_PIXELS:
            assert whole_score(image, encode(image, fmt, q)) < 0.99
    if image.width * image.height <= quality.PROXY_PIXELS:
        assert whole_score(image, choice.data) >= 0.99
    else:  # searched on the mosaic of tiles: the whole image lands close to it
        assert whole_score(image, choice.data) >= 0.985


def test_a_higher_target_never_gives_fewer_bytes() -> None:
    image = corpus.labelled((400, 300))
    sizes = [
        len(quality.choose(image, ["JPEG"], quality.Goal(target=t), CountingEncoder()).data)
        for t in (0.95, 0.99, 0.998)
    ]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("name", IMAGES)
def test_the_encoder_is_called_within_the_bound(name: str) -> None:
    image = IMAGES[name]()
    encoder = CountingEncoder()
    quality.choose(image, ["JPEG"], quality.Goal(target=0.995), encoder)
    on_image = [c for c in encoder.calls if c[0] == image.size]
    on_mosaic = [c for c in encoder.calls if c[0] != image.size]
    assert len(on_mosaic) + len(on_image) <= quality.TARGET_ENCODES + 1
    assert len(on_image) <= 1 or not on_mosaic
    if image.width * image.height > quality.PROXY_PIXELS:
        assert len(on_image) == 1  # the search ran on the mosaic, then one encode of the image


@pytest.mark.parametrize("target", [0.5, 0.9, 0.99, 0.9999])
def test_any_target_in_range_stays_within_the_bound(target: float) -> None:
    encoder = CountingEncoder()
    choice = quality.choose(corpus.photo((300, 200)), ["JPEG"], quality.Goal(target=target), encoder)
    assert len(encoder.calls) <= quality.TARGET_ENCODES
    assert choice.score is not None and choice.quality is not None
    assert choice.reached == (choice.score >= target or choice.quality == quality.Q_CEILING)
    assert choice.quality <= quality.Q_CEILING and not choice.warning


def test_fits_the_budget_with_the_highest_quality_it_found() -> None:
    image = corpus.photo((400, 300))
    budget = len(encode(image, "JPEG", 40))
    encoder = CountingEncoder()
    choice = quality.choose(image, ["JPEG"], quality.Goal(quality=90, max_bytes=budget), encoder)
    assert len(choice.data) <= budget and not choice.warning
    assert choice.quality is not None and 30 <= choice.quality <= 40
    assert len(encoder.calls) <= 1 + quality.BUDGET_ENCODES


def test_budget_and_target_together_take_the_smaller() -> None:
    image = corpus.labelled((400, 300))
    free = quality.choose(image, ["JPEG"], quality.Goal(target=0.995), CountingEncoder())
    budget = len(free.data) // 2
    encoder = CountingEncoder()
    choice = quality.choose(image, ["JPEG"], quality.Goal(target=0.995, max_bytes=budget), encoder)
    assert len(choice.data) <= budget
    assert choice.quality is not None and free.quality is not None and choice.quality < free.quality
    assert choice.score is not None and not choice.reached  # it says what the budget cost
    assert len(encoder.calls) <= quality.TARGET_ENCODES + quality.BUDGET_ENCODES + 1


def test_no_quality_fits_gives_the_smallest_output_and_a_warning() -> None:
    image = corpus.photo((400, 300))
    choice = quality.choose(image, ["JPEG"], quality.Goal(quality=50, max_bytes=100), CountingEncoder())
    assert choice.quality == quality.Q_MIN
    assert len(choice.data) == len(encode(image, "JPEG", quality.Q_MIN))
    assert choice.warning.startswith("no output fits max_bytes=100")


def test_a_lossless_output_over_the_budget_is_kept_with_a_warning() -> None:
    choice = quality.choose(corpus.photo((100, 80)), ["PNG"], quality.Goal(max_bytes=10), CountingEncoder())
    assert choice.format == "PNG" and choice.quality is None
    assert "lossless PNG" in choice.warning


def test_auto_format_is_the_smallest_of_the_formats_at_the_target() -> None:
    image = corpus.photo((400, 300))
    goal = quality.Goal(target=0.99)
    each = {f: quality.choose(image, [f], goal, CountingEncoder()) for f in ("JPEG", "WEBP")}
    auto = quality.choose(image, ["JPEG", "WEBP"], goal, CountingEncoder(), lossless=quality.LOSSLESS)
    assert auto.reached
    assert len(auto.data) == min(len(c.data) for c in each.values())


def test_flat_graphics_try_lossless_too() -> None:
    image = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(image).rectangle((50, 50, 250, 150), fill=(200, 30, 30))
    encoder = CountingEncoder()
    choice = quality.choose(image, ["WEBP"], quality.Goal(target=0.999), encoder, lossless=quality.LOSSLESS)
    assert any(q is None for _, _, q in encoder.calls)
    assert choice.quality is None or len(choice.data) <= len(encode(image, "PNG", None))


def test_transparency_is_kept_and_judged_as_seen() -> None:
    image = corpus.photo((300, 200), "RGBA")
    image.putpixel((0, 0), (255, 0, 0, 0))
    data = corpus.encode(image, "PNG")
    result = transform(data, TransformOptions(scale=1.0, output_format="auto"))
    assert result.format in ("WEBP", "AVIF", "PNG")
    with Image.open(io.BytesIO(result.data)) as out:
        assert "A" in out.convert("RGBA").getbands()
        alpha = out.convert("RGBA").getchannel("A")
        counts = alpha.histogram()  # lossy alpha (AVIF) may move a level or two
        assert sum(counts[:8]) > 0 and sum(counts[248:]) > 0
        assert alpha.getpixel((0, 0)) in range(8)
    assert result.score is not None and result.score >= quality.DEFAULT_TARGET


def test_transform_reports_the_quality_and_score_it_chose() -> None:
    options = TransformOptions(quality_auto=True, quality_target=0.99)
    result = transform(corpus.jpeg((800, 600)), options)
    assert result.format == "JPEG" and result.quality is not None and 1 <= result.quality <= 100
    assert result.score is not None and result.score >= 0.99 and not result.warning
    fixed = transform(corpus.jpeg((800, 600)), TransformOptions())
    assert fixed.quality == 50 and fixed.score is None  # the fixed path: no search, no score


def test_transform_within_a_budget() -> None:
    result = transform(corpus.jpeg((800, 600)), TransformOptions(quality=95, max_bytes=8000))
    assert len(result.data) <= 8000 and result.quality is not None and result.quality < 95


def test_small_images_are_scored_too() -> None:
    tiny = corpus.textured((40, 30))
    choice = quality.choose(tiny, ["JPEG"], quality.Goal(target=0.98), CountingEncoder())
    assert choice.score is not None and choice.score >= 0.98


def test_an_animation_over_the_budget_is_kept_with_a_warning() -> None:
    result = transform(
        corpus.gif_animated((120, 80), 3), TransformOptions(output_format="webp", max_bytes=10)
    )
    assert result.format == "WEBP" and len(result.data) > 10
    assert result.warning.startswith("no output fits max_bytes=10") and "an animation" in result.warning


@pytest.mark.parametrize("size", [(300, 200), (1200, 800)])
def test_auto_format_with_a_budget_stays_within_the_bound(size: tuple[int, int]) -> None:
    image = corpus.textured(size)
    encoder = CountingEncoder()
    budget = len(encode(image, "JPEG", 30))
    goal = quality.Goal(target=0.992, max_bytes=budget)
    choice = quality.choose(image, ["JPEG", "WEBP"], goal, encoder, lossless=quality.LOSSLESS)
    whole = size[0] * size[1] <= quality.PROXY_PIXELS
    # Searched on the image itself, each format's search gave its output and each is fitted; on the
    # mosaic, only the winner encodes the image (once) and is fitted. A fit may rescore once.
    finished = 2 if whole else 1
    bound = 2 * quality.TARGET_ENCODES + (0 if whole else 1)
    bound += finished * (quality.BUDGET_ENCODES + 1) + len(quality.LOSSLESS)
    assert len(encoder.calls) <= bound
    assert choice.encodes == len(encoder.calls)
    assert len(choice.data) <= budget or choice.warning
