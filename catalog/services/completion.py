"""Completing a request: the result CSV and the one conditional update that marks it complete."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from catalog import webhooks
from catalog.batching import batched
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage, RequestStatus
from catalog.services.rowupdates import update_rows_by_key
from catalog.storage import absolute_url, result_csv_name, save_bytes
from sansio.csvfile import ResultRow, write_result_csv

logger = logging.getLogger(__name__)

ROWS_PER_QUERY = 1000


def finalize_request(request_pk: int) -> bool:
    """Write the result CSV (fixed name) and mark the request complete, exactly once.

    Safe to run twice: the CSV is rewritten with the same content and only one run wins the
    conditional update that completes the request (and queues its webhook in the same transaction).
    """
    request = ProcessingRequest.objects.get(pk=request_pk)
    if request.completed or request.images_settled < request.images_total:
        return False
    text = io.StringIO()
    write_result_csv(_result_rows(request), text, request.input_columns)
    name = save_bytes(result_csv_name(request.request_id), text.getvalue().encode("utf-8"))
    if request.status == RequestStatus.CANCELLED or request.images_cancelled:
        status = RequestStatus.CANCELLED  # its result CSV holds what was done before the cancel
    elif request.images_failed == 0:
        status = RequestStatus.COMPLETED
    elif request.images_done == 0:
        status = RequestStatus.FAILED
    else:
        status = RequestStatus.COMPLETED_WITH_ERRORS
    completed_at = timezone.now()
    with transaction.atomic():
        won = ProcessingRequest.objects.filter(pk=request_pk, completed=False).update(
            completed=True, status=status, result_file=name, completed_at=completed_at
        )
        if won and request.webhook_url:
            request.refresh_from_db()
            webhooks.queue_completion(request)
    if won:
        seconds = (completed_at - request.created_at).total_seconds()
        logger.info(
            "completed %s: %s, %d done, %d failed, in %.1f s from upload",
            request.request_id,
            status,
            request.images_done,
            request.images_failed,
            seconds,
            extra={"duration_ms": round(seconds * 1000)},
        )
    return bool(won)


def _result_rows(request: ProcessingRequest) -> Iterator[ResultRow]:
    """Rows in input order; also records each product's joined output URLs.

    Reads by chunks of ids rather than one open cursor, because SQLite gives no isolation between a
    cursor and writes on the same connection.
    """
    product_ids = list(Product.objects.filter(request=request).order_by("line").values_list("pk", flat=True))
    for id_chunk in batched(product_ids, ROWS_PER_QUERY):
        products = Product.objects.in_bulk(id_chunk)
        outputs: dict[int, list[str | None]] = {pk: [] for pk in id_chunk}
        images = ProductImage.objects.filter(product_id__in=id_chunk).order_by("product_id", "position")
        for product_id, status, output_file in images.values_list("product_id", "status", "output_file"):
            done = status == ImageStatus.DONE and output_file
            outputs[product_id].append(absolute_url(output_file, request.base_url) if done else None)
        joined = [(",".join(url or "" for url in outputs[pk]), pk) for pk in id_chunk]
        update_rows_by_key(Product, ["output_image_url"], ["id"], joined)
        for pk in id_chunk:
            product = products[pk]
            yield ResultRow(
                product.serial_text, product.name, product.input_image_url, outputs[pk], product.kept_cells
            )
