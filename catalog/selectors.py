"""Every read the API and pages make. Status comes from our own tables, never the broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, QuerySet, Sum

from catalog import webhooks
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage
from catalog.storage import absolute_url
from sansio.csvfile import kept_column_names

MAX_ERRORS_SHOWN = 1000
MAX_IMAGES_SHOWN = 1000


def visible_requests(user: User | AnonymousUser | None) -> QuerySet[ProcessingRequest]:
    """With REQUIRE_AUTH each user sees their own requests only (staff see all)."""
    requests = ProcessingRequest.objects.all()
    if not settings.REQUIRE_AUTH or (user is not None and user.is_staff):
        return requests
    if user is None or not user.is_authenticated:
        return requests.none()
    return requests.filter(owner=user)


def find_request(request_id: uuid.UUID, user: User | AnonymousUser | None) -> ProcessingRequest | None:
    return visible_requests(user).filter(request_id=request_id).first()


def status_url(request: ProcessingRequest) -> str:
    return f"{request.base_url}/api/status/?request_id={request.request_id}"


def result_url(request: ProcessingRequest) -> str | None:
    return absolute_url(request.result_file, request.base_url) if request.result_file else None


def failures_url(request: ProcessingRequest) -> str:
    return f"{request.base_url}/api/requests/{request.request_id}/failures.csv"


def progress(request: ProcessingRequest) -> dict[str, int]:
    """From the request's counters: a poll costs one row read, however many images there are."""
    settled = request.images_settled
    percent = (
        100 if request.completed else (settled * 100 // request.images_total if request.images_total else 0)
    )
    return {
        "products": request.products_total,
        "images": request.images_total,
        "done": request.images_done,
        "failed": request.images_failed,
        "cancelled": request.images_cancelled,
        "reused": request.images_reused,
        "percent": percent,
    }


def image_errors(request: ProcessingRequest, limit: int = MAX_ERRORS_SHOWN) -> list[dict[str, Any]]:
    failed = (
        ProductImage.objects.filter(request=request, status=ImageStatus.FAILED)
        .order_by("product__line", "position")
        .values("product__line", "product__serial_number", "input_url", "error", "error_code", "position")[
            :limit
        ]
    )
    return [
        {
            "line": row["product__line"],
            "serial_number": row["product__serial_number"],
            "url": row["input_url"],
            "position": row["position"] + 1,
            "message": row["error"],
            "code": row["error_code"] or None,  # None: failed before failures carried a code
        }
        for row in failed
    ]


FAILURE_COLUMNS = ["line", "serial_number", "position", "url", "reason", "code"]


def failure_rows(request: ProcessingRequest, chunk: int = 2000) -> Iterator[list[str]]:
    """The failures CSV: a header, then every failed image in input order, with its reason in words
    and its code (sansio/reasons.py). Read by chunks of ids: SQLite gives no isolation between a cursor
    and writes."""
    yield FAILURE_COLUMNS
    fields = ["product__line", "product__serial_text", "position", "input_url", "error", "error_code"]
    failed = ProductImage.objects.filter(request=request, status=ImageStatus.FAILED)
    ids = list(failed.order_by("product__line", "position").values_list("pk", flat=True))
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        found = {
            row[0]: row[1:] for row in ProductImage.objects.filter(pk__in=part).values_list("pk", *fields)
        }
        for pk in part:
            line, serial, position, url, reason, code = found[pk]
            yield [str(line), serial, str(position + 1), url, reason, code]


def image_results(request: ProcessingRequest, limit: int = MAX_IMAGES_SHOWN) -> list[dict[str, Any]]:
    """Images done, in file order: the format, quality and score each got, and any warning."""
    done = (
        ProductImage.objects.filter(request=request, status=ImageStatus.DONE)
        .order_by("product__line", "position")
        .values(
            "product__line",
            "product__serial_number",
            "position",
            "input_url",
            "output_file",
            "output_format",
            "output_quality",
            "output_score",
            "output_bytes",
            "warning",
        )[:limit]
    )
    return [
        {
            "line": row["product__line"],
            "serial_number": row["product__serial_number"],
            "position": row["position"] + 1,
            "url": row["input_url"],
            "output_url": absolute_url(row["output_file"], request.base_url),
            "format": row["output_format"].lower(),
            "quality": row["output_quality"],
            "score": None if row["output_score"] is None else round(row["output_score"], 4),
            "bytes": row["output_bytes"],
            "warning": row["warning"] or None,
        }
        for row in done
    ]


def status_payload(request: ProcessingRequest) -> dict[str, Any]:
    errors = image_errors(request) if request.images_failed else []
    images = image_results(request) if request.images_done else []
    return {
        "status": request.status,
        "request_id": str(request.request_id),
        "name": request.name,
        "created_at": request.created_at,
        "started_at": request.started_at,
        "completed_at": request.completed_at,
        "completed": request.completed,
        "progress": progress(request),
        "options": {
            "scale": request.scale,
            "quality": "auto" if request.quality_auto else request.quality,
            "quality_target": request.quality_target,
            "max_bytes": request.max_bytes,
            "output_format": request.output_format,
            "webhook_url": request.webhook_url or None,
        },
        "result_file": result_url(request),
        "failures_file": failures_url(request) if request.images_failed else None,
        "errors": errors,
        "errors_truncated": request.images_failed > len(errors),
        "images": images,
        "images_truncated": request.images_done > len(images),
        "status_url": status_url(request),
        "webhooks": webhooks.delivery_log(request) if request.webhook_url else [],
    }


# --- Pages -------------------------------------------------------------------------------------------

PRODUCTS_PER_PAGE = 50
REQUESTS_PER_PAGE = 50


def requests_page(
    user: User | AnonymousUser | None, page: int, per_page: int = REQUESTS_PER_PAGE
) -> tuple[list[ProcessingRequest], int, int]:
    """One page of the requests a user may see, newest first; the page shown and the page count."""
    requests = visible_requests(user).order_by("-created_at")
    pages = max(1, -(-requests.count() // per_page))
    page = min(max(page, 1), pages)
    return list(requests[(page - 1) * per_page : page * per_page]), page, pages


def live_progress(user: User | AnonymousUser | None, request_ids: list[uuid.UUID]) -> dict[str, Any]:
    """Progress of several requests in one query: what a list page polls."""
    found = visible_requests(user).filter(request_id__in=request_ids[:REQUESTS_PER_PAGE])
    return {str(r.request_id): {"status": r.status, "completed": r.completed, **progress(r)} for r in found}


@dataclass(frozen=True)
class ImageRow:
    position: int
    status: str
    input_url: str
    output_url: str | None
    input_bytes: int | None
    output_bytes: int | None
    input_size: str
    output_size: str
    error: str
    error_code: str = ""
    reused: bool = False
    output_format: str = ""
    output_quality: int | None = None
    output_score: float | None = None
    warning: str = ""

    @property
    def saving_percent(self) -> int | None:
        if not self.input_bytes or self.output_bytes is None:
            return None
        return round(100 - self.output_bytes * 100 / self.input_bytes)


@dataclass(frozen=True)
class ProductRow:
    line: int
    serial_number: int
    serial: str
    name: str
    images: list[ImageRow]
    kept: list[tuple[str, str]] = field(default_factory=list)  # (column, cell) of the input's other columns


def _dimensions(width: int | None, height: int | None) -> str:
    return f"{width}\u00d7{height}" if width and height else ""


def product_rows(
    request: ProcessingRequest, page: int, *, failed_only: bool = False
) -> tuple[list[ProductRow], int, int]:
    """One page of products with their images; the page shown and the page count.

    ``failed_only``: the products with a failed image, and only those images.
    """
    products_total = request.products_total
    products = Product.objects.filter(request=request)
    images = ProductImage.objects.order_by("position")
    if failed_only:
        products = products.filter(images__status=ImageStatus.FAILED).distinct()
        images = images.filter(status=ImageStatus.FAILED)
        products_total = products.count()
    total_pages = max(1, -(-products_total // PRODUCTS_PER_PAGE))
    page = min(max(page, 1), total_pages)
    found = products.order_by("line").prefetch_related(Prefetch("images", queryset=images))
    kept_columns = kept_column_names(request.input_columns)
    rows = [
        _product_row(request, product, kept_columns)
        for product in found[(page - 1) * PRODUCTS_PER_PAGE : page * PRODUCTS_PER_PAGE]
    ]
    return rows, page, total_pages


def _product_row(request: ProcessingRequest, product: Product, kept_columns: list[str]) -> ProductRow:
    return ProductRow(
        line=product.line,
        serial_number=product.serial_number,
        serial=product.serial_text,
        name=product.name,
        images=[_image_row(request, product, image) for image in product.images.all()],
        kept=list(zip(kept_columns, product.kept_cells, strict=False)),
    )


def _image_row(request: ProcessingRequest, product: Product, image: ProductImage) -> ImageRow:
    done = bool(image.output_file)
    return ImageRow(
        position=image.position + 1,
        status=image.status,
        input_url=image.input_url,
        output_url=absolute_url(image.output_file, request.base_url) if done else None,
        input_bytes=image.input_bytes,
        output_bytes=image.output_bytes,
        input_size=_dimensions(image.input_width, image.input_height),
        output_size=_dimensions(image.output_width, image.output_height),
        error=image.error,
        error_code=image.error_code,
        reused=image.reused,
        output_format=image.output_format,
        output_quality=image.output_quality,
        output_score=image.output_score,
        warning=image.warning,
    )


def compared_image(
    request: ProcessingRequest, serial_number: int, position: int
) -> tuple[ProductRow, ImageRow, ProductImage] | None:
    """One image of one product (``position`` 1-based), for the comparison page: as the page shows
    it, and the image itself (services/previews.py makes its before picture)."""
    product = Product.objects.filter(request=request, serial_number=serial_number).first()
    image = ProductImage.objects.filter(product=product, position=position - 1).first() if product else None
    if product is None or image is None:
        return None
    row = _image_row(request, product, image)
    image.request = request
    return (
        ProductRow(product.line, product.serial_number, product.serial_text, product.name, [row]),
        row,
        image,
    )


def output_files(request: ProcessingRequest) -> QuerySet[ProductImage]:
    """Every stored output of a request, once each (duplicates share their original's file)."""
    return (
        ProductImage.objects.filter(request=request, status=ImageStatus.DONE, duplicate_of__isnull=True)
        .exclude(output_file="")
        .order_by("product__line", "position")
    )


def byte_totals(request: ProcessingRequest) -> dict[str, int | None]:
    """Bytes in and out over the images done so far (duplicates count once)."""
    totals = ProductImage.objects.filter(
        request=request, status=ImageStatus.DONE, duplicate_of__isnull=True
    ).aggregate(bytes_in=Sum("input_bytes"), bytes_out=Sum("output_bytes"))
    bytes_in, bytes_out = totals["bytes_in"] or 0, totals["bytes_out"] or 0
    saving = round(100 - bytes_out * 100 / bytes_in) if bytes_in else None
    return {"bytes_in": bytes_in, "bytes_out": bytes_out, "saving_percent": saving}
