"""Quality per image: the lowest encoder quality whose output reaches a perceptual target.

Pure (no Django, no network): given the resized image, it calls the encoder through a seam
(``Encode``) and scores each output against that image, never the original.

- **Metric**: MS-SSIM pooled by mean absolute deviation (``blazediff-ssim``'s perceptual-ssim,
  Rust) of the output against the resized image, both as a viewer sees them (transparency over
  the background); an image whose short edge is under 176 px, too small for its five scales, is
  enlarged by pixel repetition first. SSIMULACRA 2 ranks artefacts better but its Python
  implementation takes 250-950 ms on a 0.25 MP image, against 3-7 ms here (README, "Quality per
  image").
- **Proxy**: an image over ``PROXY_PIXELS`` is scored on a mosaic of tiles cut from it at
  16-pixel boundaries (JPEG's blocks, so a tile encodes as it does inside the image), chosen down
  the ranking of detail from the busiest to the calmest. The search encodes the mosaic, not the
  image: a 1.5 MP image costs a 0.08 MP search, then one encode at the quality found.
- **Search**: from a starting quality per format, at most ``TARGET_ENCODES`` encodes: the second
  aims at the target along a line in log(1 - score) fitted to what was seen (a prior slope after
  one), the third interpolates inside the bracket (none when the second lands just over the
  target). The lowest quality that reached the target wins; the search never goes above Q_CEILING.
- **Budget** (``max_bytes``): the highest quality whose output fits, at most ``BUDGET_ENCODES``
  more encodes of the image, aiming along log(bytes); where none fits, the smallest output and a
  warning.
- **Formats**: each candidate is searched at the same target and the smallest output that reaches
  it (and fits) wins, ranked by the mosaic's bytes where there is one, so that only the winner
  encodes the whole image; lossless ones (PNG, lossless WebP) are tried where the image has few colours
  or where no lossy format reached the target.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import blazediff_ssim  # type: ignore[import-untyped]  # ships no type hints
from PIL import Image, ImageFilter

# (image, Pillow format, quality) -> encoded bytes; quality None asks for the lossless encoding.
Encode = Callable[[Image.Image, str, int | None], bytes]

METRIC = "MS-SSIM (MAD pooling)"
# "No visible loss at this size". Measured with SSIMULACRA 2 (README), 0.992 lands photos and text on
# white at 72-81 ("high quality": no artefact seen at 1:1 in normal viewing); smooth gradients and
# flat product shots lower, at 53-62 (faint blocks), a weakness of every SSIM.
DEFAULT_TARGET = 0.992
TARGET_MIN, TARGET_MAX = 0.5, 0.9999
LOSSY = ("JPEG", "WEBP", "AVIF")
LOSSLESS = ("PNG", "WEBP")
Q_MIN, Q_MAX = 1, 100
# The search never goes above this: past 90, people tell no difference at the output's size (the
# photos measured score about 85 in SSIMULACRA 2 there, near "visually lossless"), bytes still grow,
# and noise-like texture, which SSIM scores as if every grain mattered, would take 100 every time.
Q_CEILING = 90
TARGET_ENCODES = 3  # encodes of the searched image (or its mosaic) to land on the target
BUDGET_ENCODES = 3  # further encodes of the image to fit max_bytes
# Where a search starts: the middle of the JPEG qualities the default target needed on the measured
# images (32-84). The image's edge detail did not predict it (text needs less than grainy texture).
START = {"JPEG": 60, "WEBP": 70, "AVIF": 55}
# A score this little over the target is within about one quality step of it: stop there.
CLOSE_ENOUGH = 0.0006
# d ln(1 - score) / d quality, for the second encode's aim. Its median between 45 and 75 over 8 kinds
# of image is -0.026, but the curve is steeper near the target: -0.035 landed closer (the mosaic's
# choice within 2 of the whole image's on 7 of 8 images at 1500x1000; -0.026: 4 of 8).
SLOPE = -0.035
BYTES_SLOPE = 0.016  # d ln(bytes) / d quality between 45 and 75, the median over the same images
MS_SSIM_MIN_SIDE = 176
PROXY_PIXELS = 160_000  # twice the mosaic: under it, the image itself is searched
TILE = 96  # a multiple of 16, JPEG's largest block (4:2:0 chroma)
TILES = 3  # a mosaic of TILES x TILES tiles: 288 x 288 px


@dataclass(frozen=True)
class Goal:
    """What to aim for: a target score (None: the fixed ``quality``) within ``max_bytes``."""

    quality: int = 50
    target: float | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class Choice:
    data: bytes
    format: str  # Pillow's name
    quality: int | None  # None: lossless
    score: float | None  # None: not measured (a fixed quality)
    reached: bool  # the target was reached (always True without a target)
    warning: str = ""
    encodes: int = 0  # calls through the seam, for every format tried


@dataclass(frozen=True)
class _Trial:
    quality: int
    size: int
    score: float
    data: bytes


@dataclass
class _Counter:
    encode: Encode
    calls: int = 0

    def __call__(self, im: Image.Image, fmt: str, quality: int | None) -> bytes:
        self.calls += 1
        return self.encode(im, fmt, quality)


@dataclass
class _Subject:
    """What the search encodes and scores: the image itself, or its mosaic of tiles."""

    image: Image.Image
    background: tuple[int, ...]
    is_whole: bool
    reference: Image.Image = field(init=False)

    def __post_init__(self) -> None:
        self.reference = _viewed(self.image, self.background)

    def score(self, data: bytes) -> float:
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
            seen = _viewed(decoded, self.background)
        if seen.size != self.image.size:
            return 0.0
        return measure(self.reference, seen)


def measure(reference: bytes | Image.Image, seen: Image.Image) -> float:
    """MS-SSIM pooled by mean absolute deviation, of RGBA pixels of the same size.

    Under MS_SSIM_MIN_SIDE both are enlarged by pixel repetition, so that every image is scored by
    the same metric (the smallest scale then sees what 2x2 blocks see).
    """
    ref = reference if isinstance(reference, Image.Image) else Image.frombytes("RGBA", seen.size, reference)
    factor = math.ceil(MS_SSIM_MIN_SIDE / min(seen.size))
    if factor > 1:
        size = (seen.width * factor, seen.height * factor)
        ref = ref.resize(size, Image.Resampling.NEAREST)
        seen = seen.resize(size, Image.Resampling.NEAREST)
    w, h = seen.size
    outcome = blazediff_ssim.compare_rgba(
        ref.tobytes(), seen.tobytes(), w, h, metric="perceptual-ssim", pooling="mad"
    )
    return float(outcome.score)


def score(reference: Image.Image, data: bytes, background: tuple[int, ...] = (255, 255, 255)) -> float:
    """The metric of encoded ``data`` against the whole ``reference`` (no mosaic)."""
    return _Subject(reference, background, is_whole=True).score(data)


def _viewed(im: Image.Image, background: tuple[int, ...]) -> Image.Image:
    """The pixels as a viewer sees them: over the background where transparent, as RGBA bytes."""
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        base = Image.new("RGBA", im.size, (*background[:3], 255))
        return Image.alpha_composite(base, im.convert("RGBA"))
    return im.convert("RGBA")


def has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info


def subject_of(image: Image.Image, background: tuple[int, ...]) -> _Subject:
    """The image, or over PROXY_PIXELS a mosaic of tiles from its busiest to its calmest parts."""
    w, h = image.size
    if w * h <= PROXY_PIXELS or w < TILE * TILES or h < TILE * TILES:
        return _Subject(image, background, is_whole=True)
    cols, rows = w // TILE, h // TILE
    # Detail per tile: mean edge strength, from a copy where each tile is a handful of pixels.
    small = image.resize((cols * 8, rows * 8), Image.Resampling.BOX).convert("L")
    detail = small.filter(ImageFilter.FIND_EDGES).resize((cols, rows), Image.Resampling.BOX)
    values = detail.tobytes()
    ranked = sorted(range(cols * rows), key=lambda i: values[i], reverse=True)
    count = TILES * TILES
    # Quadratic steps down the ranking: most tiles from the busy end, where artefacts show, and
    # a few calm ones, where banding shows (an even spread over-weights plain backgrounds).
    picked = [ranked[round((k / (count - 1)) ** 2 * (len(ranked) - 1))] for k in range(count)]
    mosaic = Image.new(image.mode, (TILE * TILES, TILE * TILES))
    for slot, index in enumerate(picked):
        x, y = (index % cols) * TILE, (index // cols) * TILE
        tile = image.crop((x, y, x + TILE, y + TILE))
        mosaic.paste(tile, ((slot % TILES) * TILE, (slot // TILES) * TILE))
    mosaic.info = {k: v for k, v in image.info.items() if k == "transparency"}
    return _Subject(mosaic, background, is_whole=False)


def _next_quality(trials: list[_Trial], target: float) -> int | None:
    """The quality to try next, or None when the lowest one that reaches the target is known."""
    meets = [t for t in trials if t.score >= target]
    misses = [t for t in trials if t.score < target]
    hi = min(meets, key=lambda t: t.quality) if meets else None
    lo = max(misses, key=lambda t: t.quality) if misses else None
    if hi is not None and (hi.quality == Q_MIN or (lo is not None and hi.quality - lo.quality <= 1)):
        return None
    if hi is not None and hi.score - target <= CLOSE_ENOUGH:
        return None  # one quality step lower would miss it: no third encode for a step
    if lo is not None and lo.quality >= Q_CEILING:
        return None
    goal = math.log(1 - target)
    if hi is not None and lo is not None:
        a, b = math.log(max(1 - lo.score, 1e-9)), math.log(max(1 - hi.score, 1e-9))
        share = (a - goal) / (a - b) if a != b else 0.5
        guess = lo.quality + math.ceil(share * (hi.quality - lo.quality))
        return min(max(guess, lo.quality + 1), hi.quality - 1)
    ref = hi or lo
    assert ref is not None
    slope = SLOPE
    if len(trials) >= 2:
        first, last = trials[0], trials[-1]
        fitted = (math.log(max(1 - last.score, 1e-9)) - math.log(max(1 - first.score, 1e-9))) / (
            last.quality - first.quality or 1
        )
        slope = fitted if fitted < -0.005 else SLOPE
    step = (goal - math.log(max(1 - ref.score, 1e-9))) / slope
    # Overshoot a little past the target so that the next try brackets it.
    guess = ref.quality + (math.ceil(step) + 2 if lo is not None else math.floor(step) - 2)
    if lo is not None:
        return min(max(guess, lo.quality + 1), Q_CEILING)
    assert hi is not None
    return max(min(guess, hi.quality - 1), Q_MIN)


def _search(subject: _Subject, fmt: str, target: float, encode: Encode) -> list[_Trial]:
    trials: list[_Trial] = []
    quality: int | None = START.get(fmt, 60)
    while quality is not None and len(trials) < TARGET_ENCODES:
        data = encode(subject.image, fmt, quality)
        trials.append(_Trial(quality, len(data), subject.score(data), data))
        quality = _next_quality(trials, target)
    return trials


def _fit(
    image: Image.Image, fmt: str, start: _Trial, max_bytes: int, encode: Encode
) -> tuple[int, bytes, bool]:
    """The highest quality below ``start`` whose output fits, or the smallest output seen."""
    sizes: dict[int, bytes] = {start.quality: start.data}
    for _ in range(BUDGET_ENCODES):
        fits = [q for q, d in sizes.items() if len(d) <= max_bytes]
        over = [q for q, d in sizes.items() if len(d) > max_bytes]
        best, low_over = (max(fits) if fits else None), min(over)
        if (best is not None and low_over - best <= 1) or low_over == Q_MIN:
            break
        ref = sizes[low_over]
        if best is not None:
            a, b = math.log(len(sizes[best])), math.log(len(ref))
            share = (math.log(max_bytes) - a) / (b - a) if b != a else 0.5
            guess = best + math.floor(share * (low_over - best))
            quality = min(max(guess, best + 1), low_over - 1)
        else:
            step = (math.log(max_bytes) - math.log(len(ref))) / BYTES_SLOPE
            quality = max(min(low_over + math.floor(step) - 2, low_over - 1), Q_MIN)
            if len(sizes) == BUDGET_ENCODES:  # the last try: the smallest there is
                quality = Q_MIN
        sizes[quality] = encode(image, fmt, quality)
    fits = [q for q, d in sizes.items() if len(d) <= max_bytes]
    if fits:
        return max(fits), sizes[max(fits)], True
    smallest = min(sizes, key=lambda q: len(sizes[q]))
    return smallest, sizes[smallest], False


@dataclass(frozen=True)
class _Found:
    """A format's search result, before the image itself is encoded (unless it was the subject)."""

    format: str
    quality: int
    score: float | None
    reached: bool
    data: bytes | None  # the image's own encoding, where the search ran on the image
    searched_size: int  # bytes of the searched subject at that quality (0 for a fixed quality)


def _find(subject: _Subject | None, fmt: str, goal: Goal, encode: Encode) -> _Found:
    if goal.target is None or subject is None:
        return _Found(fmt, goal.quality, None, True, None, 0)
    trials = _search(subject, fmt, goal.target, encode)
    meets = [t for t in trials if t.score >= goal.target]
    chosen = min(meets, key=lambda t: t.quality) if meets else max(trials, key=lambda t: t.score)
    reached = bool(meets) or chosen.quality >= Q_CEILING  # the ceiling counts as no visible loss
    data = chosen.data if subject.is_whole else None
    return _Found(fmt, chosen.quality, chosen.score, reached, data, chosen.size)


def _finish(
    image: Image.Image, subject: _Subject | None, found: _Found, goal: Goal, encode: Encode
) -> Choice:
    """Encode the image at the quality found, then fit it to the budget if it is over."""
    fmt, quality, score, reached = found.format, found.quality, found.score, found.reached
    data = found.data if found.data is not None else encode(image, fmt, quality)
    warning = ""
    if goal.max_bytes is not None and len(data) > goal.max_bytes:
        fitted, data, fits = _fit(image, fmt, _Trial(quality, len(data), 0.0, data), goal.max_bytes, encode)
        if fitted != quality and goal.target is not None and subject is not None:
            score = subject.score(data if subject.is_whole else encode(subject.image, fmt, fitted))
            reached = score >= goal.target or fitted >= Q_CEILING
        quality = fitted
        if not fits:
            warning = over_budget(goal.max_bytes, len(data), f"{fmt} quality {quality}")
    if not reached and not warning and score is not None:
        warning = f"the target {goal.target} was not reached: {score:.4f} at {fmt} quality {quality}"
    return Choice(data, fmt, quality, score, reached, warning)


def _choose_lossless(image: Image.Image, fmt: str, goal: Goal, encode: Encode) -> Choice:
    data = encode(image, fmt, None)
    warning = ""
    if goal.max_bytes is not None and len(data) > goal.max_bytes:
        warning = over_budget(goal.max_bytes, len(data), f"lossless {fmt}")
    return Choice(data, fmt, None, None if goal.target is None else 1.0, True, warning)


def over_budget(max_bytes: int, size: int, what: str) -> str:
    return f"no output fits max_bytes={max_bytes}: the smallest is {size} bytes ({what})"


def choose(
    image: Image.Image,
    formats: Sequence[str],
    goal: Goal,
    encode: Encode,
    background: tuple[int, ...] = (255, 255, 255),
    *,
    lossless: Sequence[str] = (),
) -> Choice:
    """The smallest output among ``formats`` that reaches the goal, searched format by format.

    ``lossless`` formats are tried too where the image has few colours (flat graphics: lossless is
    often smaller there) or where no lossy format reached the target.
    """
    subject = subject_of(image, background) if goal.target is not None else None
    counter = _Counter(encode)
    found: list[_Found] = []
    for fmt in (f for f in formats if f in LOSSY):
        try:
            found.append(_find(subject, fmt, goal, counter))
        except (OSError, ValueError):  # an encoder that cannot take this image's mode: skip it
            if len(formats) == 1:
                raise
    if len(found) > 1 and subject is not None and not subject.is_whole:
        # Searched on the mosaic: its bytes rank the formats, and only the winner encodes the image.
        found = [min(found, key=lambda f: (not f.reached, f.searched_size))]
    choices = [_finish(image, subject, f, goal, counter) for f in found]
    choices += [_choose_lossless(image, fmt, goal, counter) for fmt in formats if fmt not in LOSSY]
    few_colours = lossless and image.getcolors(maxcolors=256) is not None
    if lossless and (few_colours or not any(c.reached for c in choices)):
        choices += [_choose_lossless(image, fmt, goal, counter) for fmt in lossless]
    best = min(choices, key=lambda c: (not c.reached, bool(c.warning), len(c.data)))
    return replace(best, encodes=counter.calls)
