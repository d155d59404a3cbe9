"""Producing one claimed image's output: download, transform and store it under its content key, or
say why not (ImageFailed). Nothing here writes to the database: the batch settles the outcomes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from catalog import metrics
from catalog.downloadwindow import DownloadWindow, Place
from catalog.fetch import Fetcher, FetchError
from catalog.models import ContentOutput, ProcessingRequest
from catalog.services import reuse
from catalog.services.claims import ClaimedImage
from catalog.storage import content_output_name, save_bytes
from sansio import quality as per_image
from sansio.contentkeys import output_key
from sansio.images import ImageRejected, TransformOptions, transform
from sansio.reasons import Reason

# The name these lines have always had (README "Logs", tests/e2e/test_metrics.py): kept over the split.
logger = logging.getLogger("catalog.services.processing")


class ImageFailed(Exception):
    """Processing did not give an output: why (``code``, from sansio/reasons.py) and in words (the
    message, shown to the user); ``retryable`` says whether another attempt may succeed, and
    ``retry_after`` not before how many seconds (the host asked for a wait); ``turn_key``, that the
    download was not sent: its batch runs it again at that host's turn (catalog/hostpolicy.py)."""

    def __init__(
        self,
        message: str,
        *,
        code: Reason,
        retryable: bool,
        retry_after: float | None = None,
        turn_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        self.turn_key = turn_key

    @classmethod
    def internal(cls) -> ImageFailed:
        """Something we did not expect (a bug): the message says no more, the log says what."""
        return cls("internal error while processing the image", code=Reason.INTERNAL, retryable=True)


@dataclass(frozen=True)
class ImageOutput:
    name: str
    format: str
    input_bytes: int
    output_bytes: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    quality: int | None = None
    score: float | None = None
    warning: str = ""
    content_key: str = ""  # sansio.contentkeys.output_key of the input and options
    source: reuse.SourceSeen | None = None  # what the URL sent, when it sent the bytes
    reused: bool = False  # made before (unchanged at the host, or the same bytes): not transformed now

    @classmethod
    def stored(cls, row: ContentOutput, source: reuse.SourceSeen | None) -> ImageOutput:
        return cls(
            name=row.output_file,
            format=row.output_format,
            input_bytes=row.input_bytes,
            output_bytes=row.output_bytes,
            input_size=(row.input_width, row.input_height),
            output_size=(row.output_width, row.output_height),
            content_key=row.key,
            source=source,
            reused=True,
        )

    def content_row(self, now: datetime) -> ContentOutput:
        assert self.source is not None
        return ContentOutput(
            key=self.content_key,
            input_hash=self.source.content_hash,
            output_file=self.name,
            output_format=self.format,
            input_bytes=self.input_bytes,
            output_bytes=self.output_bytes,
            input_width=self.input_size[0],
            input_height=self.input_size[1],
            output_width=self.output_size[0],
            output_height=self.output_size[1],
            created_at=now,
        )


def transform_options(request: ProcessingRequest) -> TransformOptions:
    """Everything that shapes a request's outputs (and so is in their content keys)."""
    return TransformOptions(
        scale=request.scale,
        quality=request.quality,
        output_format=request.output_format,
        max_pixels=settings.IMAGE_MAX_PIXELS,
        max_frames=settings.IMAGE_MAX_FRAMES,
        background=settings.IMAGE_BACKGROUND,
        quality_auto=request.quality_auto,
        quality_target=request.quality_target or per_image.DEFAULT_TARGET,
        max_bytes=request.max_bytes,
    )


OutputLookup = Callable[[str], ContentOutput | None]  # reuse.find_output, or a way to run it


def produce_output(
    claimed: ClaimedImage,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    prior: reuse.Prior = reuse.NO_PRIOR,
    lookup: OutputLookup = reuse.find_output,
    *,
    window: DownloadWindow | None = None,
    waits_end: float = math.inf,
) -> ImageOutput:
    """Download, transform and store one image under its content key. Raises ImageFailed.

    With a ``prior`` (services/reuse.py) the download is conditional and a 304 reuses its output;
    bytes that were transformed before with the same options are not transformed again. Touches the
    database for one read at most (that lookup), so a batch can run many of these in threads.
    ``transform_slots`` (a semaphore) bounds how many decode and encode at once: downloads and
    uploads wait on the network, transforms on the cores, and more transforms than cores only thrash
    the caches. ``window`` (catalog/downloadwindow.py) bounds how many images are in hand before their
    transform; the wait for a place in it ends at ``waits_end`` (the batch's time limit). Each attempt
    is timed, and a failed one counted by its code; a success is counted when it is settled.
    """
    started = time.perf_counter()
    try:
        place = Place(window, claimed.image.pk)
        if not place.take(waits_end):
            raise ImageFailed("processing took too long", code=Reason.TIMEOUT, retryable=True)
        try:
            output = _produce(claimed, fetcher, transform_slots, prior, lookup, place=place)
        finally:
            place.give_back()  # if it had no transform
    except ImageFailed as exc:
        ms = metrics.count_attempt(time.perf_counter() - started, failure=exc.code, retryable=exc.retryable)
        logger.info(
            "image %s failed (%s) in %d ms", claimed.image.pk, exc.code, ms, extra={"duration_ms": ms}
        )
        raise
    except Exception:
        metrics.count_attempt(time.perf_counter() - started, failure=Reason.INTERNAL, retryable=True)
        raise
    ms = metrics.count_attempt(time.perf_counter() - started)
    logger.info(
        "image %s %s in %d ms: %d -> %d bytes",
        claimed.image.pk,
        "reused" if output.reused else "done",
        ms,
        output.input_bytes,
        output.output_bytes,
        extra={"duration_ms": ms},
    )
    return output


# Called in an image's own context once its download is over and its transform is next (set by its
# batch, services/batches.py, which then may give its room to the next batch). Not for an image whose
# output is reused: it ends at once, and a re-run's batches (every image a 304) giving their rooms up
# only had twice the batches claiming and settling at once on the database: 2.4-2.9 s, not 1.7-2.4.
transform_next: ContextVar[Callable[[], None] | None] = ContextVar("transform_next", default=None)


def _produce(
    claimed: ClaimedImage,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    prior: reuse.Prior,
    lookup: OutputLookup,
    *,
    place: Place,
) -> ImageOutput:
    image, request = claimed.image, claimed.image.request
    spent = image.download_seconds  # by earlier attempts: this one gets what is left of the budget
    left = round(settings.IMAGE_TOTAL_BUDGET - spent, 1)  # to a tenth: a deadline of 30 s, not 29.9992 s
    started = time.monotonic()
    waited = 0.0  # for the host's connection slots: our turn, not the host's time (catalog/fetch)
    try:
        with metrics.DOWNLOAD_SECONDS.time():
            response = fetcher.fetch_image(
                image.input_url,
                etag=prior.etag,
                last_modified=prior.last_modified,
                total_timeout=max(0.001, min(settings.FETCH_TOTAL_TIMEOUT, left)),
            )
        waited = response.waited
        place.downloaded(time.monotonic() - started)
    except FetchError as exc:
        waited = exc.waited
        raise ImageFailed(
            str(exc),
            code=exc.code,
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            turn_key=exc.turn_key,
        ) from exc
    finally:  # settle keeps it for a retry
        image.download_seconds = spent + max(0.0, time.monotonic() - started - waited)
    if response.not_modified and prior.output is not None:
        return ImageOutput.stored(prior.output, source=None)
    options = transform_options(request)
    seen = reuse.SourceSeen.of(image.input_url, response)
    key = output_key(seen.content_hash, options)
    made = prior.output if prior.output is not None and prior.output.key == key else lookup(key)
    if made is not None:
        return ImageOutput.stored(made, seen)
    if (at_transform := transform_next.get()) is not None:
        at_transform()  # only its transform is left (not for a reused output: that ends now anyway)
    try:
        with transform_slots:
            place.give_back()  # its transform has begun: the next image may download
            transform_started = time.perf_counter()
            result = transform(response.body, options)
            place.transformed(time.perf_counter() - transform_started)
    except ImageRejected as exc:
        raise ImageFailed(str(exc), code=exc.code, retryable=False) from exc
    name = content_output_name(key, result.extension)
    try:
        save_bytes(name, result.data)
    except Exception as exc:
        logger.exception("image %s: the output could not be stored as %s", image.pk, name)
        raise ImageFailed("the output could not be stored", code=Reason.STORAGE, retryable=True) from exc
    return ImageOutput(
        name=name,
        format=result.format,
        input_bytes=len(response.body),
        output_bytes=len(result.data),
        input_size=(result.input_width, result.input_height),
        output_size=(result.width, result.height),
        content_key=key,
        source=seen,
        quality=result.quality,
        score=result.score,
        warning=result.warning,
    )
