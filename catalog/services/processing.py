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
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage
from catalog.queueing import enqueue
from catalog.services.rowupdates import update_each
from catalog.storage import output_image_name, save_bytes
from sansio.images import ImageRejected, TransformOptions, transform

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedImage:
    image: ProductImage
    token: uuid.UUID

    @property
    def attempt(self) -> int:
        return self.image.attempts


def claim_images(image_ids: list[int]) -> list[ClaimedImage]:
    """Take those of the images that are queued, or running on an expired lease, in one UPDATE.

    The rest are done already or held by another worker: a duplicate delivery claims nothing.
    """
    now = timezone.now()
    token = uuid.uuid4()
    claimable = Q(status=ImageStatus.QUEUED) | Q(status=ImageStatus.RUNNING, lease_expires_at__lt=now)
    claimed = ProductImage.objects.filter(claimable, pk__in=image_ids, duplicate_of__isnull=True).update(
        status=ImageStatus.RUNNING,
        attempts=F("attempts") + 1,
        claim_token=token,
        lease_expires_at=now + timedelta(seconds=settings.IMAGE_LEASE_SECONDS),
    )
    if not claimed:
        return []
    images = (
        ProductImage.objects.filter(claim_token=token).select_related("request", "product").order_by("pk")
    )
    return [ClaimedImage(image, token) for image in images]


class ImageFailed(Exception):
    """Processing did not give an output; ``retryable`` says whether another attempt may, and
    ``retry_after`` not before how many seconds (the host asked for a wait)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class ImageOutput:
    name: str
    format: str
    input_bytes: int
    output_bytes: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]


@metrics.observe_image
def produce_output(
    claimed: ClaimedImage, fetcher: Fetcher, transform_slots: AbstractContextManager[object]
) -> ImageOutput:
    """Download, transform and store one image under its fixed name. Raises ImageFailed.

    Touches no database, so a batch can run many of these in threads. ``transform_slots`` (a
    semaphore) bounds how many decode and encode at once: downloads and uploads wait on the network,
    transforms on the cores, and more transforms than cores only thrash the caches.
    """
    image, request = claimed.image, claimed.image.request
    spent = image.download_seconds  # by earlier attempts: this one gets what is left of the budget
    left = round(settings.IMAGE_TOTAL_BUDGET - spent, 1)  # to a tenth: a deadline of 30 s, not 29.9992 s
    started = time.monotonic()
    try:
        with metrics.DOWNLOAD_SECONDS.time():
            response = fetcher.fetch_image(
                image.input_url, total_timeout=max(0.001, min(settings.FETCH_TOTAL_TIMEOUT, left))
            )
    except FetchError as exc:
        raise ImageFailed(str(exc), retryable=exc.retryable, retry_after=exc.retry_after) from exc
    finally:
        image.download_seconds = spent + (time.monotonic() - started)  # settle keeps it for a retry
    options = TransformOptions(
        scale=request.scale,
        quality=request.quality,
        output_format=request.output_format,
        max_pixels=settings.IMAGE_MAX_PIXELS,
        max_frames=settings.IMAGE_MAX_FRAMES,
        background=settings.IMAGE_BACKGROUND,
    )
    try:
        with transform_slots:
            result = transform(response.body, options)
    except ImageRejected as exc:
        raise ImageFailed(str(exc), retryable=False) from exc
    name = output_image_name(
        request.request_id, image.product.serial_number, image.position, result.extension
    )
    save_bytes(name, result.data)
    return ImageOutput(
        name=name,
        format=result.format,
        input_bytes=len(response.body),
        output_bytes=len(result.data),
        input_size=(result.input_width, result.input_height),
        output_size=(result.width, result.height),
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
        "error": "",
    }


def settle(
    done: list[tuple[ClaimedImage, ImageOutput]],
    failed: list[tuple[ClaimedImage, str]],
    retry: list[tuple[ClaimedImage, str]],
) -> list[ClaimedImage]:
    """Record a batch's outcomes in one transaction; returns the claims given back for a retry.

    Only a claim still held (same token, still running) settles anything, so a worker that lost its
    lease to another changes nothing. Duplicates of a settled image settle with it, and each
    request's counters move by one UPDATE.
    """
    batch = _Settlement(timezone.now())
    outcomes = [(claimed, _output_fields(output), "images_done") for claimed, output in done]
    outcomes += [
        (claimed, {"status": ImageStatus.FAILED, "error": message[:2000]}, "images_failed")
        for claimed, message in failed
    ]
    released: list[ClaimedImage] = []
    with transaction.atomic():
        for claimed, message in retry:
            if _out_of_budget(claimed):
                spent = claimed.image.download_seconds
                error = f"{message} (gave up after {claimed.attempt} attempts, {spent:.0f} s of downloads)"
                gave_up = {"status": ImageStatus.FAILED, "error": error[:2000]}
                outcomes.append((claimed, gave_up, "images_failed"))
            elif claimed.attempt >= settings.IMAGE_MAX_ATTEMPTS:
                error = f"{message} (gave up after {claimed.attempt} attempts)"
                gave_up = {"status": ImageStatus.FAILED, "error": error[:2000]}
                outcomes.append((claimed, gave_up, "images_failed"))
            elif _holding(claimed).update(
                status=ImageStatus.QUEUED,
                error=message[:2000],
                lease_expires_at=None,
                enqueued_at=batch.now,
                download_seconds=claimed.image.download_seconds,
            ):
                released.append(claimed)
        batch.settle(outcomes)
        batch.write_counters()
    return released


def _out_of_budget(claimed: ClaimedImage) -> bool:
    """Another attempt would have too little of IMAGE_TOTAL_BUDGET left to connect and be answered."""
    left = settings.IMAGE_TOTAL_BUDGET - claimed.image.download_seconds
    return left < settings.FETCH_CONNECT_TIMEOUT


_HELD_BY = ("id", "status", "claim_token")  # a claim holds its image while all three still match


def _held(claimed: ClaimedImage) -> tuple[int, ImageStatus, uuid.UUID]:
    return claimed.image.pk, ImageStatus.RUNNING, claimed.token


def _holding(claimed: ClaimedImage) -> QuerySet[ProductImage]:
    """The image, only while this claim still holds it (not re-claimed after a lease expiry)."""
    return ProductImage.objects.filter(**dict(zip(_HELD_BY, _held(claimed), strict=True)))


def _write_while_held(updates: list[tuple[ClaimedImage, dict[str, Any]]]) -> set[int]:
    """Write each image's fields only while its claim holds (as ``_holding``); returns the pks written.

    One statement for every image that sets the same fields, not an ORM update each (see rowupdates).
    """
    written: set[int] = set()
    groups: dict[tuple[str, ...], list[tuple[ClaimedImage, dict[str, Any]]]] = defaultdict(list)
    for claimed, fields in updates:
        groups[tuple(fields)].append((claimed, fields))
    for names, group in groups.items():
        rows = [[*fields.values(), *_held(claimed)] for claimed, fields in group]
        changed = update_each(ProductImage, names, _HELD_BY, rows)
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

    def settle(self, outcomes: list[tuple[ClaimedImage, dict[str, Any], str]]) -> None:
        """Write each outcome whose claim still holds, and count it."""
        finished = {"lease_expires_at": None, "finished_at": self.now}
        updates = [(claimed, {**fields, **finished}) for claimed, fields, _ in outcomes]
        written = _write_while_held(updates)
        for (claimed, fields), (_, _, counter) in zip(updates, outcomes, strict=True):
            image = claimed.image
            if image.pk not in written:
                continue
            self.settled[image.pk] = (image, fields, counter)
            self.counts[(image.request_id, counter)] += 1
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
            self.counts[(image.request_id, counter)] += copies.update(**fields)

    def write_counters(self) -> None:
        self.settle_duplicates()
        for (request_pk, counter), n in self.counts.items():
            increment = {counter: F(counter) + n}
            ProcessingRequest.objects.filter(pk=request_pk).update(last_progress_at=self.now, **increment)
        mark_products_processed(self.products)
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
