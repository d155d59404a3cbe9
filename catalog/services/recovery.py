"""Finding work that was lost or stalled: the database is the record of what is left to do.

What only waits (images not yet sent, services.dispatching) is never touched here: only claims whose
worker is gone or whose lease expired, messages sent a lease ago and never claimed, dispatches and
finalizes that were lost.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus
from catalog.services.claims import ClaimedImage
from catalog.services.dispatching import forget_sent
from catalog.services.producing import ImageFailed
from catalog.services.settling import settle
from sansio.reasons import Reason

WORKER_GONE = ImageFailed(
    "the worker stopped while processing this image", code=Reason.INTERNAL, retryable=True
)


@dataclass
class ReconcileReport:
    requests_redispatched: list[int] = field(default_factory=list)
    images_requeued: list[int] = field(default_factory=list)
    images_given_up: int = 0
    requests_to_finalize: list[int] = field(default_factory=list)


def claimant(node: str, main_pid: int, process_pid: int) -> str:
    """Who a claim names: the worker (Celery node name and main process) and its pool process."""
    return f"{node}/{main_pid}/{process_pid}"


def _release(held: Q) -> tuple[list[int], int]:
    """Give the images of these claims back to the queue at once; one that used every attempt fails.

    Through ``settle``, so a claim settled meanwhile by its holder is left alone. Returns the images
    given back, and how many were given up.
    """
    images = ProductImage.objects.filter(held, status=ImageStatus.RUNNING).select_related(
        "request", "product"
    )
    claims = [ClaimedImage(image, image.claim_token) for image in images if image.claim_token is not None]
    if not claims:
        return [], 0
    released = settle([], [], [(claimed, WORKER_GONE) for claimed in claims], backoff=False)
    given_up = ProductImage.objects.filter(
        pk__in=[c.image.pk for c in claims],
        status=ImageStatus.FAILED,
        claim_token__in={c.token for c in claims},
    ).count()
    return [claimed.image.pk for claimed in released], given_up


def release_claims_of_node(node: str, *, except_main_pid: int | None = None) -> int:
    """Release every claim of this worker node, but those of its live main process if named.

    A node name is one worker (Celery requires them unique), so at a worker's start every claim of
    its node from an earlier main process is one whose process is gone.
    """
    held = Q(claimed_by__startswith=f"{node}/")
    if except_main_pid is not None:
        held &= ~Q(claimed_by__startswith=f"{node}/{except_main_pid}/")
    return len(_release(held)[0])


def claiming_processes(node: str, main_pid: int) -> set[int]:
    """Pool processes of this worker that hold claims now."""
    prefix = f"{node}/{main_pid}/"
    held = ProductImage.objects.filter(status=ImageStatus.RUNNING, claimed_by__startswith=prefix)
    return {int(name.removeprefix(prefix)) for name in held.values_list("claimed_by", flat=True).distinct()}


def release_claims_of_processes(node: str, main_pid: int, process_pids: Collection[int]) -> int:
    """Release the claims of these (gone) pool processes of this worker."""
    names = [claimant(node, main_pid, pid) for pid in process_pids]
    return len(_release(Q(claimed_by__in=names))[0]) if names else 0


def pending_request_ids() -> list[int]:
    """Requests accepted and not yet dispatched (a dispatch is idempotent: sending it again is safe)."""
    return list(ProcessingRequest.objects.filter(status=RequestStatus.PENDING).values_list("pk", flat=True))


def reconcile() -> ReconcileReport:
    """Say what to re-dispatch and finalize; give back what was lost, and give up exhausted images.

    - a request still pending a lease period after upload: its dispatch message was lost;
    - a running image whose lease expired: its worker died unseen (given up once attempts are used);
    - an image sent a lease ago and still not claimed: its message was lost;
    - a request whose images are all settled but that is not complete: its finalize was lost.
    Given-back images wait for the dispatcher, which the caller runs next.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IMAGE_LEASE_SECONDS)
    report = ReconcileReport()

    report.requests_redispatched = list(
        ProcessingRequest.objects.filter(status=RequestStatus.PENDING, created_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    released, report.images_given_up = _release(Q(lease_expires_at__lt=now))
    report.images_requeued = released + forget_sent(older_than=stale)
    report.requests_to_finalize = list(
        ProcessingRequest.objects.filter(ProcessingRequest.settled_filter(), completed=False).values_list(
            "pk", flat=True
        )
    )
    return report
