"""Claiming images, producing their outputs, and settling them in one transaction per batch."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from catalog import metrics
from catalog.fetch import Fetcher, FetchError
from catalog.models import ContentOutput, ImageStatus, ProcessingRequest, Product, ProductImage
from catalog.queueing import enqueue
from catalog.services import reuse
from catalog.services.rowupdates import update_rows_by_key
from catalog.storage import content_output_name, preview_image_name, save_bytes
from sansio import quality as per_image
from sansio.backoff import backoff_seconds
from sansio.contentkeys import output_key
from sansio.images import ImageRejected, TransformOptions, transform
from sansio.reasons import Reason

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedImage:
    image: ProductImage
    token: uuid.UUID

    @property
    def attempt(self) -> int:
        return self.image.attempts


def claim_images(image_ids: list[int], claimant: str = "") -> list[ClaimedImage]:
    """Take those of the images that are queued, or running on an expired lease, in one UPDATE.

    The rest are done already or held by another worker: a duplicate delivery claims nothing.
    ``claimant`` names the worker process (see ``services.claims``), so that claims of a process
    known to be gone can be released at once rather than a lease later.
    """
    now = timezone.now()
    token = uuid.uuid4()
    claimable = Q(status=ImageStatus.QUEUED) | Q(status=ImageStatus.RUNNING, lease_expires_at__lt=now)
    claimed = ProductImage.objects.filter(claimable, pk__in=image_ids, duplicate_of__isnull=True).update(
        status=ImageStatus.RUNNING,
        attempts=F("attempts") + 1,
        claim_token=token,
        claimed_by=claimant,
        lease_expires_at=now + timedelta(seconds=settings.IMAGE_LEASE_SECONDS),
    )
    if not claimed:
        return []
    images = (
        ProductImage.objects.filter(claim_token=token).select_related("request", "product").order_by("pk")
    )
    return [ClaimedImage(image, token) for image in images]


class ImageFailed(Exception):
    """Processing did not give an output: why (``code``, from sansio/reasons.py) and in words (the
    message, shown to the user); ``retryable`` says whether another attempt may succeed, and
    ``retry_after`` not before how many seconds (the host asked for a wait)."""

    def __init__(
        self, message: str, *, code: Reason, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after

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
            input_sha256=self.source.content_sha256,
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
        preview_side=settings.IMAGE_PREVIEW_SIZE,
        quality_auto=request.quality_auto,
        quality_target=request.quality_target or per_image.DEFAULT_TARGET,
        max_bytes=request.max_bytes,
    )


def produce_output(
    claimed: ClaimedImage,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    prior: reuse.Prior = reuse.NO_PRIOR,
) -> ImageOutput:
    """Download, transform and store one image under its content key. Raises ImageFailed.

    With a ``prior`` (services/reuse.py) the download is conditional and a 304 reuses its output;
    bytes that were transformed before with the same options are not transformed again. Touches the
    database for one read at most (that lookup), so a batch can run many of these in threads.
    ``transform_slots`` (a semaphore) bounds how many decode and encode at once: downloads and
    uploads wait on the network, transforms on the cores, and more transforms than cores only thrash
    the caches. Each attempt is timed, and a failed one counted by its code; a success is counted
    when it is settled.
    """
    started = time.perf_counter()
    try:
        output = _produce(claimed, fetcher, transform_slots, prior)
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


def _produce(
    claimed: ClaimedImage,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    prior: reuse.Prior,
) -> ImageOutput:
    image, request = claimed.image, claimed.image.request
    spent = image.download_seconds  # by earlier attempts: this one gets what is left of the budget
    left = round(settings.IMAGE_TOTAL_BUDGET - spent, 1)  # to a tenth: a deadline of 30 s, not 29.9992 s
    started = time.monotonic()
    try:
        with metrics.DOWNLOAD_SECONDS.time():
            response = fetcher.fetch_image(
                image.input_url,
                etag=prior.etag,
                last_modified=prior.last_modified,
                total_timeout=max(0.001, min(settings.FETCH_TOTAL_TIMEOUT, left)),
            )
    except FetchError as exc:
        raise ImageFailed(
            str(exc), code=exc.code, retryable=exc.retryable, retry_after=exc.retry_after
        ) from exc
    finally:
        image.download_seconds = spent + (time.monotonic() - started)  # settle keeps it for a retry
    if response.not_modified and prior.output is not None:
        return ImageOutput.stored(prior.output, source=None)
    options = transform_options(request)
    seen = reuse.SourceSeen.of(image.input_url, response)
    key = output_key(seen.content_sha256, options)
    made = prior.output if prior.output is not None and prior.output.key == key else reuse.find_output(key)
    if made is not None:
        return ImageOutput.stored(made, seen)
    try:
        with transform_slots:
            result = transform(response.body, options)
    except ImageRejected as exc:
        raise ImageFailed(str(exc), code=exc.code, retryable=False) from exc
    name = content_output_name(key, result.extension)
    try:
        save_bytes(name, result.data)
    except Exception as exc:
        logger.exception("image %s: the output could not be stored as %s", image.pk, name)
        raise ImageFailed("the output could not be stored", code=Reason.STORAGE, retryable=True) from exc
    if result.preview:  # the pages' "before" picture (see sansio.images._preview)
        save_bytes(preview_image_name(name), result.preview)
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


def _output_fields(output: ImageOutput) -> dict[str, Any]:
    return {
        "status": ImageStatus.DONE,
        "output_file": output.name,
        "output_format": output.format,
        "input_bytes": output.input_bytes,
        "output_bytes": output.output_bytes,
        "input_width": output.input_size[0],
        "input_height": output.input_size[1],
        "output_width": output.output_size[0],
        "output_height": output.output_size[1],
        "output_quality": output.quality,
        "output_score": output.score,
        "warning": output.warning[:2000],
        "error": "",
        "error_code": "",
        "reused": output.reused,
    }


def _failed_fields(failure: ImageFailed, note: str = "") -> dict[str, Any]:
    return {
        "status": ImageStatus.FAILED,
        "error": f"{failure}{note}"[:2000],
        "error_code": failure.code.value,
    }


def retry_delay(attempt: int) -> float:
    """2 s, 4 s, 8 s … up to 5 minutes after a failed attempt, with full jitter: a host that failed
    many images is not hit again all at once."""
    return backoff_seconds(attempt, first=2, cap=300, spread=(0.0, 1.0))


def settle(
    done: list[tuple[ClaimedImage, ImageOutput]],
    failed: list[tuple[ClaimedImage, ImageFailed]],
    retry: list[tuple[ClaimedImage, ImageFailed]],
    *,
    backoff: bool = True,
) -> list[ClaimedImage]:
    """Record a batch's outcomes in one transaction; returns the claims given back for a retry.

    Only a claim still held (same token, still running) settles anything, so a worker that lost its
    lease to another changes nothing. Duplicates of a settled image settle with it, and each
    request's counters move by one UPDATE. An image given back waits in the database for the
    dispatcher (services.dispatching): after a backoff, or, with ``backoff=False``, at once.
    """
    batch = _Settlement(timezone.now())
    outcomes = [(claimed, _output_fields(output), "images_done") for claimed, output in done]
    outcomes += [(claimed, _failed_fields(failure), "images_failed") for claimed, failure in failed]
    released: list[ClaimedImage] = []
    with transaction.atomic():
        reuse.record(done)
        for claimed, failure in retry:
            if _out_of_budget(claimed):  # the last failure's code, and why it is the last
                spent = claimed.image.download_seconds
                note = f" (gave up after {claimed.attempt} attempts, {spent:.0f} s of downloads)"
                outcomes.append((claimed, _failed_fields(failure, note), "images_failed"))
            elif claimed.attempt >= settings.IMAGE_MAX_ATTEMPTS:
                gave_up = _failed_fields(failure, f" (gave up after {claimed.attempt} attempts)")
                outcomes.append((claimed, gave_up, "images_failed"))
            elif _still_claimed(claimed).update(
                status=ImageStatus.QUEUED,
                error=str(failure)[:2000],
                error_code=failure.code.value,
                lease_expires_at=None,
                enqueued_at=None,
                not_before=_not_before(batch.now, claimed, failure, backoff=backoff),
                download_seconds=claimed.image.download_seconds,
            ):
                released.append(claimed)
        batch.settle(outcomes)
        batch.write_counters()
    return released


def _not_before(
    now: datetime, claimed: ClaimedImage, failure: ImageFailed, *, backoff: bool
) -> datetime | None:
    """When the dispatcher may send a retry: after its backoff (unless given back at once), and never
    before the host's Retry-After ends."""
    wait = retry_delay(claimed.attempt) if backoff else 0.0
    if failure.retry_after is not None:
        wait = max(wait, failure.retry_after)
    return now + timedelta(seconds=wait) if wait > 0 else None


def _out_of_budget(claimed: ClaimedImage) -> bool:
    """Another attempt would have too little of IMAGE_TOTAL_BUDGET left to connect and be answered."""
    left = settings.IMAGE_TOTAL_BUDGET - claimed.image.download_seconds
    return left < settings.FETCH_CONNECT_TIMEOUT


_CLAIM_KEY_FIELDS = ("id", "status", "claim_token")  # a claim holds its image while all three still match


def _claim_key(claimed: ClaimedImage) -> tuple[int, ImageStatus, uuid.UUID]:
    """The values of _CLAIM_KEY_FIELDS while this claim holds its image."""
    return claimed.image.pk, ImageStatus.RUNNING, claimed.token


def _still_claimed(claimed: ClaimedImage) -> QuerySet[ProductImage]:
    """The image, only while this claim still holds it (not re-claimed after a lease expiry)."""
    return ProductImage.objects.filter(**dict(zip(_CLAIM_KEY_FIELDS, _claim_key(claimed), strict=True)))


def _write_while_claimed(updates: list[tuple[ClaimedImage, dict[str, Any]]]) -> set[int]:
    """Write each image's fields while its claim holds (as ``_still_claimed``); returns the pks written.

    One statement for every image that sets the same fields, not an ORM update each (see rowupdates).
    """
    written: set[int] = set()
    groups: dict[tuple[str, ...], list[tuple[ClaimedImage, dict[str, Any]]]] = defaultdict(list)
    for claimed, fields in updates:
        groups[tuple(fields)].append((claimed, fields))
    for names, group in groups.items():
        rows = [[*fields.values(), *_claim_key(claimed)] for claimed, fields in group]
        changed = update_rows_by_key(ProductImage, names, _CLAIM_KEY_FIELDS, rows)
        pks = {claimed.image.pk for claimed, _ in group}
        if changed == len(group):
            written |= pks
        else:  # some claims were lost: ours are the rows now finished with our token
            mine = ProductImage.objects.filter(
                pk__in=pks,
                claim_token__in={claimed.token for claimed, _ in group},
                finished_at=group[0][1]["finished_at"],
            )
            written |= set(mine.values_list("pk", flat=True))
    return written


@dataclass
class _Settlement:
    """What one batch settled, so duplicates, counters and products are written once per batch."""

    now: datetime
    counts: Counter[tuple[int, str]] = field(default_factory=Counter)
    products: set[int] = field(default_factory=set)
    settled: dict[int, tuple[ProductImage, dict[str, Any], str]] = field(default_factory=dict)
    processed: list[tuple[int, int, bool]] = field(default_factory=list)  # (input, output) bytes, reused

    def settle(self, outcomes: list[tuple[ClaimedImage, dict[str, Any], str]]) -> None:
        """Write each outcome whose claim still holds, and count it."""
        finished = {"lease_expires_at": None, "finished_at": self.now}
        updates = [(claimed, {**fields, **finished}) for claimed, fields, _ in outcomes]
        written = _write_while_claimed(updates)
        for (claimed, fields), (_, _, counter) in zip(updates, outcomes, strict=True):
            image = claimed.image
            if image.pk not in written:
                continue
            self.settled[image.pk] = (image, fields, counter)
            self.counts[(image.request_id, counter)] += 1
            self.counts[(image.request_id, "images_reused")] += bool(fields.get("reused"))
            if fields["status"] == ImageStatus.DONE:  # counted once: only the claim's holder settles
                self.processed.append((fields["input_bytes"], fields["output_bytes"], fields["reused"]))
            self.products.add(image.product_id)
            if fields["status"] == ImageStatus.FAILED:
                logger.warning("image %s failed: %s", image.input_url, fields["error"])

    def settle_duplicates(self) -> None:
        """Later copies of a settled URL in its request take its outcome: one query finds them all."""
        if not self.settled:
            return
        waiting = ProductImage.objects.filter(duplicate_of_id__in=self.settled, status=ImageStatus.QUEUED)
        originals: set[int] = set()
        for original_pk, product_pk in waiting.values_list("duplicate_of_id", "product_id"):
            originals.add(original_pk)
            self.products.add(product_pk)
        for original_pk in originals:
            image, fields, counter = self.settled[original_pk]
            copies = ProductImage.objects.filter(duplicate_of_id=original_pk, status=ImageStatus.QUEUED)
            copied = copies.update(**fields)
            self.counts[(image.request_id, counter)] += copied
            self.counts[(image.request_id, "images_reused")] += copied if fields.get("reused") else 0

    def write_counters(self) -> None:
        self.settle_duplicates()
        for (request_pk, counter), n in self.counts.items():
            if not n:
                continue
            increment = {counter: F(counter) + n}
            ProcessingRequest.objects.filter(pk=request_pk).update(last_progress_at=self.now, **increment)
        mark_products_processed(self.products)
        if self.processed:
            processed = list(self.processed)
            transaction.on_commit(lambda: metrics.count_processed(processed))
        for request_pk in {request_pk for request_pk, _ in self.counts}:
            finalize_if_settled(request_pk)


def mark_products_processed(product_ids: set[int]) -> None:
    if not product_ids:
        return
    unsettled = ProductImage.objects.filter(
        product_id__in=product_ids, status__in=(ImageStatus.QUEUED, ImageStatus.RUNNING)
    ).values_list("product_id", flat=True)
    Product.objects.filter(pk__in=product_ids).exclude(pk__in=set(unsettled)).update(processed=True)


def finalize_if_settled(request_pk: int) -> None:
    settled = ProcessingRequest.objects.filter(
        ProcessingRequest.settled_filter(), pk=request_pk, completed=False
    )
    if settled.exists():
        transaction.on_commit(lambda: enqueue("catalog.tasks.finalize_request", request_pk))
