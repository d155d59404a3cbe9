"""Every write to requests, products and images.

Work is claimed and counted with conditional UPDATEs, so a task delivered twice, or a worker killed
half-way, never counts an image twice: an image is claimed by moving it to RUNNING with a lease and a
new attempt number, and only the holder of that attempt may settle it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from catalog import webhooks
from catalog.batching import batched
from catalog.fetch import Fetcher, FetchError
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage, RequestStatus
from catalog.queueing import enqueue
from catalog.storage import absolute_url, output_image_name, result_csv_name, save_bytes
from sansio.csvfile import CatalogueReader, CatalogueRow, CsvLimits, CsvProblem, ResultRow, write_result_csv
from sansio.images import ImageRejected, TransformOptions, transform

logger = logging.getLogger(__name__)

INSERT_BATCH = 1000
ENQUEUE_BATCH = 500


@dataclass(frozen=True)
class RequestOptions:
    scale: float = 0.5
    quality: int = 50
    output_format: str = "original"
    webhook_url: str = ""


class CatalogueRejected(Exception):
    def __init__(self, problems: list[CsvProblem], truncated: bool) -> None:
        super().__init__(f"{len(problems)} problem(s) in the CSV")
        self.problems = problems
        self.truncated = truncated


def csv_limits() -> CsvLimits:
    return CsvLimits(
        max_rows=settings.CSV_MAX_ROWS,
        max_field_bytes=settings.CSV_MAX_FIELD_BYTES,
        max_urls_per_row=settings.CSV_MAX_URLS_PER_ROW,
        max_problems=settings.CSV_MAX_PROBLEMS,
    )


# --- Accepting a request --------------------------------------------------------------------------


def create_request(
    upload: IO[bytes],
    *,
    name: str,
    options: RequestOptions,
    base_url: str,
    owner: User | None = None,
) -> ProcessingRequest:
    """Validate the whole CSV, then store it as one request; nothing is queued for a refused file.

    Two streaming passes over the (spooled) upload: the first only validates, so the write
    transaction of the second is short and never rolled back for bad input.
    """
    limits = csv_limits()
    reader = CatalogueReader(upload, limits)
    for _row in reader:
        pass
    if reader.problems:
        raise CatalogueRejected(reader.problems, reader.truncated)
    upload.seek(0)

    with transaction.atomic():
        request = ProcessingRequest.objects.create(
            owner=owner,
            name=name[:255],
            scale=options.scale,
            quality=options.quality,
            output_format=options.output_format,
            webhook_url=options.webhook_url,
            base_url=base_url,
        )
        products_total, images_total = _insert_rows(request, CatalogueReader(upload, limits))
        ProcessingRequest.objects.filter(pk=request.pk).update(
            products_total=products_total, images_total=images_total
        )
        request.products_total, request.images_total = products_total, images_total
        transaction.on_commit(lambda: enqueue("catalog.tasks.dispatch_request", request.pk))
    logger.info("accepted %s: %d products, %d images", request.request_id, products_total, images_total)
    return request


def _insert_rows(request: ProcessingRequest, rows: Iterable[CatalogueRow]) -> tuple[int, int]:
    products_total = images_total = 0
    now = timezone.now()
    for chunk in batched(rows, INSERT_BATCH):
        products = [
            Product(
                request=request,
                line=row.line,
                serial_number=row.serial_number,
                serial_text=row.serial_text,
                name=row.product_name,
                input_image_url=row.urls_text,
                upload_time=now,
            )
            for row in chunk
        ]
        Product.objects.bulk_create(products)
        images = [
            ProductImage(request=request, product=product, position=position, input_url=url)
            for product, row in zip(products, chunk, strict=True)
            for position, url in enumerate(row.urls)
        ]
        ProductImage.objects.bulk_create(images, batch_size=INSERT_BATCH)
        products_total += len(products)
        images_total += len(images)
    return products_total, images_total


# --- Starting work --------------------------------------------------------------------------------


def start_request(request_pk: int) -> None:
    ProcessingRequest.objects.filter(pk=request_pk, status=RequestStatus.PENDING).update(
        status=RequestStatus.PROCESSING, started_at=timezone.now()
    )


def queued_image_ids(request_pk: int, *, enqueued_before: datetime | None = None) -> Iterator[int]:
    images = ProductImage.objects.filter(request_id=request_pk, status=ImageStatus.QUEUED)
    if enqueued_before is not None:
        images = images.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=enqueued_before))
    return images.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=ENQUEUE_BATCH)


def mark_enqueued(image_ids: list[int]) -> None:
    ProductImage.objects.filter(pk__in=image_ids).update(enqueued_at=timezone.now())


# --- Processing one image -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedImage:
    image: ProductImage
    attempt: int


def claim_image(image_id: int) -> ClaimedImage | None:
    """Take the image if it is queued, or running on a lease that expired; None if someone has it."""
    now = timezone.now()
    claimable = Q(status=ImageStatus.QUEUED) | Q(status=ImageStatus.RUNNING, lease_expires_at__lt=now)
    with transaction.atomic():
        claimed = ProductImage.objects.filter(claimable, pk=image_id).update(
            status=ImageStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=settings.IMAGE_LEASE_SECONDS),
        )
        if not claimed:
            return None
        image = ProductImage.objects.select_related("request", "product").get(pk=image_id)
    return ClaimedImage(image, image.attempts)


class ImageFailed(Exception):
    """Processing did not give an output; ``retryable`` says whether another attempt may."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ImageOutput:
    name: str
    format: str
    input_bytes: int
    output_bytes: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]


def produce_output(claimed: ClaimedImage, fetcher: Fetcher) -> ImageOutput:
    """Download, transform and store one image under its fixed name. Raises ImageFailed."""
    image, request = claimed.image, claimed.image.request
    try:
        response = fetcher.fetch_image(image.input_url)
    except FetchError as exc:
        raise ImageFailed(str(exc), retryable=exc.retryable) from exc
    options = TransformOptions(
        scale=request.scale,
        quality=request.quality,
        output_format=request.output_format,
        max_pixels=settings.IMAGE_MAX_PIXELS,
        max_frames=settings.IMAGE_MAX_FRAMES,
    )
    try:
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


def finish_image(claimed: ClaimedImage, output: ImageOutput) -> None:
    now = timezone.now()
    with transaction.atomic():
        settled = _holding(claimed).update(
            status=ImageStatus.DONE,
            output_file=output.name,
            output_format=output.format,
            input_bytes=output.input_bytes,
            output_bytes=output.output_bytes,
            input_width=output.input_size[0],
            input_height=output.input_size[1],
            output_width=output.output_size[0],
            output_height=output.output_size[1],
            error="",
            lease_expires_at=None,
            finished_at=now,
        )
        if settled:
            _count_settled(claimed.image, now, "images_done")
    if settled:
        _finalize_if_settled(claimed.image.request_id)


def fail_image(claimed: ClaimedImage, message: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        settled = _holding(claimed).update(
            status=ImageStatus.FAILED, error=message[:2000], lease_expires_at=None, finished_at=now
        )
        if settled:
            _count_settled(claimed.image, now, "images_failed")
    if settled:
        logger.warning("image %s failed: %s", claimed.image.input_url, message)
        _finalize_if_settled(claimed.image.request_id)


def release_image(claimed: ClaimedImage, message: str) -> bool:
    """Give the image back to the queue for another attempt; False if attempts are used up."""
    if claimed.attempt >= settings.IMAGE_MAX_ATTEMPTS:
        fail_image(claimed, f"{message} (gave up after {claimed.attempt} attempts)")
        return False
    released = _holding(claimed).update(
        status=ImageStatus.QUEUED, error=message[:2000], lease_expires_at=None, enqueued_at=timezone.now()
    )
    return bool(released)


def _holding(claimed: ClaimedImage) -> QuerySet[ProductImage]:
    """The image, only while this claim still holds it (not re-claimed after a lease expiry)."""
    return ProductImage.objects.filter(
        pk=claimed.image.pk, status=ImageStatus.RUNNING, attempts=claimed.attempt
    )


def _count_settled(image: ProductImage, now: datetime, counter: str) -> None:
    ProcessingRequest.objects.filter(pk=image.request_id).update(
        last_progress_at=now, **{counter: F(counter) + 1}
    )
    unsettled = ProductImage.objects.filter(
        product_id=image.product_id, status__in=(ImageStatus.QUEUED, ImageStatus.RUNNING)
    )
    if not unsettled.exists():
        Product.objects.filter(pk=image.product_id).update(processed=True)


def _finalize_if_settled(request_pk: int) -> None:
    settled = ProcessingRequest.objects.filter(
        pk=request_pk, completed=False, images_total=F("images_done") + F("images_failed")
    )
    if settled.exists():
        transaction.on_commit(lambda: enqueue("catalog.tasks.finalize_request", request_pk))


# --- Completing a request -------------------------------------------------------------------------


def finalize_request(request_pk: int) -> bool:
    """Write the result CSV (fixed name) and mark the request complete, exactly once.

    Safe to run twice: the CSV is rewritten with the same content and only one run wins the
    conditional update that completes the request.
    """
    request = ProcessingRequest.objects.get(pk=request_pk)
    if request.completed or request.images_settled < request.images_total:
        return False
    text = io.StringIO()
    write_result_csv(_result_rows(request), text)
    name = save_bytes(result_csv_name(request.request_id), text.getvalue().encode("utf-8"))
    if request.images_failed == 0:
        status = RequestStatus.COMPLETED
    elif request.images_done == 0:
        status = RequestStatus.FAILED
    else:
        status = RequestStatus.COMPLETED_WITH_ERRORS
    with transaction.atomic():
        won = ProcessingRequest.objects.filter(pk=request_pk, completed=False).update(
            completed=True, status=status, result_file=name, completed_at=timezone.now()
        )
        if won and request.webhook_url:
            request.refresh_from_db()
            webhooks.queue_completion(request)
    if won:
        logger.info(
            "completed %s: %s, %d done, %d failed",
            request.request_id,
            status,
            request.images_done,
            request.images_failed,
        )
    return bool(won)


def _result_rows(request: ProcessingRequest) -> Iterator[ResultRow]:
    """Rows in input order; also records each product's joined output URLs.

    Reads by chunks of ids rather than one open cursor, because SQLite gives no isolation between a
    cursor and writes on the same connection.
    """
    product_ids = list(Product.objects.filter(request=request).order_by("line").values_list("pk", flat=True))
    for id_chunk in batched(product_ids, INSERT_BATCH):
        products = Product.objects.in_bulk(id_chunk)
        outputs: dict[int, list[str | None]] = {pk: [] for pk in id_chunk}
        images = ProductImage.objects.filter(product_id__in=id_chunk).order_by("product_id", "position")
        for product_id, status, output_file in images.values_list("product_id", "status", "output_file"):
            done = status == ImageStatus.DONE and output_file
            outputs[product_id].append(absolute_url(output_file, request.base_url) if done else None)
        for pk in id_chunk:
            products[pk].output_image_url = ",".join(url or "" for url in outputs[pk])
        Product.objects.bulk_update(products.values(), ["output_image_url"])
        for pk in id_chunk:
            product = products[pk]
            yield ResultRow(product.serial_text, product.name, product.input_image_url, outputs[pk])


# --- Repairing what was lost ----------------------------------------------------------------------


@dataclass
class ReconcileReport:
    requests_redispatched: list[int]
    images_requeued: list[int]
    images_given_up: int
    requests_to_finalize: list[int]


def reconcile() -> ReconcileReport:
    """Find work the broker lost and say what to re-queue; the database is the record of what is left.

    - a request still pending well after upload: its dispatch message was lost;
    - a running image whose lease expired: its worker died; given up once attempts are used;
    - queued images of a request with no progress for a lease period: their messages were lost;
    - a request whose images are all settled but that is not completed: its finalize was lost.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IMAGE_LEASE_SECONDS)
    report = ReconcileReport([], [], 0, [])

    report.requests_redispatched = list(
        ProcessingRequest.objects.filter(status=RequestStatus.PENDING, created_at__lt=stale).values_list(
            "pk", flat=True
        )
    )

    expired = ProductImage.objects.filter(status=ImageStatus.RUNNING, lease_expires_at__lt=now)
    exhausted = expired.filter(attempts__gte=settings.IMAGE_MAX_ATTEMPTS)
    for image_id, request_pk in exhausted.values_list("pk", "request_id"):
        report.images_given_up += _give_up(image_id, request_pk, now)
    report.images_requeued.extend(expired.values_list("pk", flat=True))

    stalled = ProcessingRequest.objects.filter(status=RequestStatus.PROCESSING, completed=False).filter(
        Q(last_progress_at__lt=stale) | Q(last_progress_at__isnull=True, started_at__lt=stale)
    )
    for request_pk in stalled.values_list("pk", flat=True):
        report.images_requeued.extend(queued_image_ids(request_pk, enqueued_before=stale))

    report.requests_to_finalize = list(
        ProcessingRequest.objects.filter(
            completed=False, images_total=F("images_done") + F("images_failed")
        ).values_list("pk", flat=True)
    )
    return report


def _give_up(image_id: int, request_pk: int, now: datetime) -> int:
    with transaction.atomic():
        image = ProductImage.objects.filter(
            pk=image_id, status=ImageStatus.RUNNING, lease_expires_at__lt=now
        ).first()
        if image is None:
            return 0
        fail_image(
            ClaimedImage(image, image.attempts),
            f"gave up after {image.attempts} attempts: the worker stopped",
        )
    return 1
