"""Stopping a request and running its failed images again: for the API, the pages and the command line.

Both are conditional UPDATEs, like every other write to a request, so they race safely with workers:
an image goes from queued either to running (a worker claimed it first) or to cancelled, never both;
a retry re-opens only a request that is complete, and only its failed images.
"""

from __future__ import annotations

from enum import Enum

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage, RequestStatus
from catalog.queueing import enqueue
from catalog.services.settling import finalize_if_settled, mark_products_processed


class Refusal(Enum):
    ALREADY_COMPLETED = "already completed"
    STILL_RUNNING = "still processing"
    NOTHING_FAILED = "nothing failed"


class LifecycleRefused(Exception):
    """The request is not in a state for this; ``str()`` is a sentence for the caller."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def cancel_request(request: ProcessingRequest) -> ProcessingRequest:
    """Stop a request: its images not yet started are never processed; those running finish.

    It then completes as ``cancelled`` with a result CSV of what was done. Cancelling a cancelled
    request again changes nothing; a completed one is refused.
    """
    with transaction.atomic():
        ProcessingRequest.objects.filter(pk=request.pk, completed=False).update(
            status=RequestStatus.CANCELLED
        )
        request.refresh_from_db()
        if request.status != RequestStatus.CANCELLED:
            raise LifecycleRefused(
                Refusal.ALREADY_COMPLETED,
                f"request {request.request_id} had already completed ({request.status})",
            )
        cancel_queued_images(request.pk)
    request.refresh_from_db()
    return request


def cancel_queued_images(request_pk: int) -> int:
    """Settle a cancelled request's queued images as cancelled, and finalize it once nothing runs.

    Also what the reconciler calls for a cancelled request whose running image was put back in the
    queue for another attempt after the cancel (so it is not left waiting).
    """
    now = timezone.now()
    with transaction.atomic():
        queued = ProductImage.objects.filter(request_id=request_pk, status=ImageStatus.QUEUED)
        products = set(queued.values_list("product_id", flat=True))
        cancelled = queued.update(status=ImageStatus.CANCELLED, finished_at=now, lease_expires_at=None)
        if cancelled:  # else the last running image's settle finalizes it
            ProcessingRequest.objects.filter(pk=request_pk).update(
                images_cancelled=F("images_cancelled") + cancelled, last_progress_at=now
            )
            mark_products_processed(products)
            finalize_if_settled(request_pk)
    return cancelled


def cancelled_leftovers() -> list[int]:
    """Cancelled requests not yet complete that still have queued images (see cancel_queued_images)."""
    return list(
        ProcessingRequest.objects.filter(
            status=RequestStatus.CANCELLED, completed=False, images__status=ImageStatus.QUEUED
        )
        .distinct()
        .values_list("pk", flat=True)
    )


def retry_request(request: ProcessingRequest) -> ProcessingRequest:
    """Queue a completed request's failed images again with a fresh attempt budget.

    The same request goes back to processing; its result CSV and webhook are produced again when it
    completes. Refused while it is still processing or when nothing failed.
    """
    now = timezone.now()
    with transaction.atomic():
        reopened = ProcessingRequest.objects.filter(
            pk=request.pk, completed=True, images_failed__gt=0
        ).update(
            completed=False,
            status=RequestStatus.PROCESSING,
            completed_at=None,
            result_file="",
            images_failed=0,
            last_progress_at=now,
        )
        if not reopened:
            request.refresh_from_db()
            if not request.completed:
                raise LifecycleRefused(
                    Refusal.STILL_RUNNING,
                    f"request {request.request_id} is still processing: wait for it to complete",
                )
            raise LifecycleRefused(
                Refusal.NOTHING_FAILED, f"request {request.request_id} has no failed images to retry"
            )
        failed = ProductImage.objects.filter(request_id=request.pk, status=ImageStatus.FAILED)
        products = set(failed.values_list("product_id", flat=True))
        # Duplicates failed with their first: they go back to waiting for it, as at upload.
        failed.update(
            status=ImageStatus.QUEUED,
            attempts=0,
            error="",
            claim_token=None,
            enqueued_at=None,
            lease_expires_at=None,
            finished_at=None,
        )
        Product.objects.filter(pk__in=products).update(processed=False)
        transaction.on_commit(lambda: enqueue("catalog.tasks.dispatch_request", request.pk))
    request.refresh_from_db()
    return request
