"""Accepting a CSV as a request, and handing its images to the queue."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.batching import batched
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage, RequestStatus
from catalog.queueing import enqueue
from sansio.csvfile import CatalogueReader, CatalogueRow, CsvLimits, CsvProblem

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
    """Insert products and images in batches; a URL seen before in the request becomes a duplicate."""
    products_total = images_total = 0
    first_image_of: dict[str, int] = {}  # URL -> pk of the image that will be processed for it
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
        firsts: list[ProductImage] = []
        repeats: list[ProductImage] = []
        for product, row in zip(products, chunk, strict=True):
            for position, url in enumerate(row.urls):
                image = ProductImage(request=request, product=product, position=position, input_url=url)
                if url in first_image_of:
                    repeats.append(image)
                else:
                    first_image_of[url] = -1  # placeholder until the insert gives it a pk
                    firsts.append(image)
        ProductImage.objects.bulk_create(firsts, batch_size=INSERT_BATCH)
        for image in firsts:
            first_image_of[image.input_url] = image.pk
        for image in repeats:
            image.duplicate_of_id = first_image_of[image.input_url]
        ProductImage.objects.bulk_create(repeats, batch_size=INSERT_BATCH)
        products_total += len(products)
        images_total += len(firsts) + len(repeats)
    return products_total, images_total


def start_request(request_pk: int) -> None:
    ProcessingRequest.objects.filter(pk=request_pk, status=RequestStatus.PENDING).update(
        status=RequestStatus.PROCESSING, started_at=timezone.now()
    )


def queued_image_ids(request_pk: int, *, enqueued_before: datetime | None = None) -> Iterator[int]:
    """Queued images to hand to workers; a duplicate is settled with its first, never queued itself."""
    images = ProductImage.objects.filter(
        request_id=request_pk, status=ImageStatus.QUEUED, duplicate_of__isnull=True
    )
    if enqueued_before is not None:
        images = images.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=enqueued_before))
    return images.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=ENQUEUE_BATCH)


def mark_enqueued(image_ids: list[int]) -> None:
    ProductImage.objects.filter(pk__in=image_ids).update(enqueued_at=timezone.now())
