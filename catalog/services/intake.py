"""Accepting a CSV as a request, and handing its images to the queue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from catalog import metrics
from catalog.batching import batched
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage, RequestStatus
from catalog.queueing import enqueue
from sansio.csvfile import CatalogueReader, CatalogueRow, CsvLimits, CsvProblem

logger = logging.getLogger(__name__)

INSERT_BATCH = 1000


@dataclass(frozen=True)
class RequestOptions:
    """What an upload chose; each field is the request's model field of the same name."""

    scale: float = 0.5
    quality: int = 50
    output_format: str = "original"
    webhook_url: str = ""
    quality_auto: bool = False
    quality_target: float | None = None  # None: sansio.quality.DEFAULT_TARGET
    max_bytes: int | None = None


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
        max_url_length=settings.CSV_MAX_URL_LENGTH,
    )


def accept_upload(
    upload: UploadedFile,
    options: dict[str, Any],
    *,
    user: User | AnonymousUser | None,
    site_url: str,
    on_stored: Callable[[ProcessingRequest], None] | None = None,
) -> ProcessingRequest:
    """Store an uploaded CSV as a request, for the API and the upload page alike (or CatalogueRejected).

    ``options`` are what catalog.uploads.UploadOptionsSerializer validated; a signed-in ``user`` owns
    the request; its URLs start with PUBLIC_BASE_URL, else with ``site_url`` (where the upload came).
    """
    return create_request(
        upload,
        name=upload.name or "upload.csv",
        options=RequestOptions(**options),
        base_url=settings.PUBLIC_BASE_URL or site_url.rstrip("/"),
        owner=user if user is not None and user.is_authenticated else None,
        on_stored=on_stored,
    )


def create_request(
    upload: IO[bytes],
    *,
    name: str,
    options: RequestOptions,
    base_url: str,
    owner: User | None = None,
    on_stored: Callable[[ProcessingRequest], None] | None = None,
) -> ProcessingRequest:
    """Read the CSV once, storing it as one request; nothing is kept, or queued, for a refused file.

    ``on_stored`` runs in the transaction that stores the request (an idempotency key is bound there).

    One streaming pass, inserting each thousand rows as they are read, in one transaction that a
    file with any problem rolls back. (Validating the whole file first and inserting in a second pass
    kept a refused file from ever writing, but read every file twice: a 100,000-row upload spent
    1.2-1.8 s of its 5-6 s on the second read.) Reading in a thread of its own while this one inserts
    was tried and gained nothing: the two take turns at the GIL.
    """
    limits = csv_limits()
    reader = CatalogueReader(upload, limits)
    try:
        with transaction.atomic():
            request = ProcessingRequest.objects.create(
                owner=owner, name=name[:255], base_url=base_url, **asdict(options)
            )
            products_total, images_total = _insert_rows(request, reader)
            if reader.problems:  # the whole file is read: every problem is known
                raise CatalogueRejected(reader.problems, reader.truncated)
            request.products_total, request.images_total = products_total, images_total
            request.input_columns = list(reader.columns)  # final once the file is read
            request.save(update_fields=["products_total", "images_total", "input_columns"])
            if on_stored is not None:
                on_stored(request)
            transaction.on_commit(lambda: enqueue("catalog.tasks.dispatch_request", request.pk))
    except CatalogueRejected:
        metrics.count_upload(accepted=False)
        raise
    logger.info("accepted %s: %d products, %d images", request.request_id, products_total, images_total)
    metrics.count_upload(accepted=True)
    return request


def _insert_rows(request: ProcessingRequest, rows: Iterable[CatalogueRow]) -> tuple[int, int]:
    """Insert products and images in batches; a URL seen before in the request becomes a duplicate.

    Plain executemany rather than bulk_create: the ORM spends ~60 µs building each row, which made a
    100,000-row upload take over ten seconds; this keeps it to the database's own speed. The rows'
    ids are reserved first (``_reserve_ids``), so no query reads them back after each insert.
    """
    products_total = images_total = 0
    first_image_of: dict[str, int] = {}  # URL -> pk of the image that will be processed for it
    upload_time = connection.ops.adapt_datetimefield_value(timezone.now())
    no_kept_cells = connection.ops.adapt_json_value([], None)  # most catalogues: adapted once
    image_columns = ["id", "request_id", "product_id", "position", "input_url", "duplicate_of_id"]
    image_defaults = {"status": ImageStatus.QUEUED.value, "attempts": 0}
    image_defaults |= {"output_file": "", "output_format": "", "error": "", "claimed_by": "", "warning": ""}
    for chunk in batched(rows, INSERT_BATCH):
        product_ids = _reserve_ids(Product, len(chunk))
        _insert(
            Product,
            [
                "id",
                "request_id",
                "line",
                "serial_number",
                "serial_text",
                "name",
                "input_image_url",
                "kept_cells",
            ],
            [
                (
                    *(pk, request.pk, r.line, r.serial_number, r.serial_text, r.product_name, r.urls_text),
                    connection.ops.adapt_json_value(list(r.kept), None) if r.kept else no_kept_cells,
                )
                for pk, r in zip(product_ids, chunk, strict=True)
            ],
            extra={"output_image_url": "", "upload_time": upload_time, "processed": False},
        )
        image_ids = iter(_reserve_ids(ProductImage, sum(len(row.urls) for row in chunk)))
        images = []
        for product_pk, row in zip(product_ids, chunk, strict=True):
            for position, url in enumerate(row.urls):
                pk = next(image_ids)
                first = first_image_of.setdefault(url, pk)
                images.append((pk, request.pk, product_pk, position, url, None if first == pk else first))
        _insert(ProductImage, image_columns, images, extra=image_defaults)
        products_total += len(chunk)
        images_total += len(images)
    return products_total, images_total


def _reserve_ids(model: type[Model], count: int) -> list[int]:
    """Ids for ``count`` new rows of ``model``, which no other insert will take."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return [int(pk) for (pk,) in cursor.fetchall()]
        # SQLite: this transaction holds the write lock (IMMEDIATE), so nobody inserts meanwhile, and
        # AUTOINCREMENT never reuses an id: start past both the table's largest id and its sequence.
        largest = f"SELECT max(id) FROM {connection.ops.quote_name(table)}"  # noqa: S608 - our table, quoted
        sequence = "SELECT seq FROM sqlite_sequence WHERE name = %s"
        cursor.execute(f"SELECT max(coalesce(({sequence}), 0), coalesce(({largest}), 0))", [table])
        (last,) = cursor.fetchone()
    return list(range(int(last) + 1, int(last) + 1 + count))


def _insert(
    model: type[Model], columns: list[str], rows: list[tuple[Any, ...]], extra: dict[str, Any]
) -> None:
    if not rows:
        return
    names = [*columns, *extra]
    quote = connection.ops.quote_name
    # Identifiers come from our own models, quoted; every value is a parameter.
    table, column_list = quote(model._meta.db_table), ", ".join(quote(n) for n in names)
    constants = tuple(extra.values())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: executemany sent 200,000 rows of a 100,000-row upload in 11.6 s; COPY streams them.
            with cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*row, *constants))
            return
        sql = f"INSERT INTO {table} ({column_list}) VALUES ({', '.join(['%s'] * len(names))})"  # noqa: S608
        cursor.executemany(sql, [(*row, *constants) for row in rows])


def start_request(request_pk: int) -> None:
    ProcessingRequest.objects.filter(pk=request_pk, status=RequestStatus.PENDING).update(
        status=RequestStatus.PROCESSING, started_at=timezone.now()
    )


def queued_image_ids(request_pk: int) -> list[int]:
    """Queued images of a request; a duplicate is settled with its first, never queued itself."""
    images = ProductImage.objects.filter(
        request_id=request_pk, status=ImageStatus.QUEUED, duplicate_of__isnull=True
    )
    return list(images.order_by("pk").values_list("pk", flat=True))
