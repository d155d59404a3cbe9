"""Finding work the broker lost: the database is the record of what is left to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus
from catalog.services.intake import queued_image_ids
from catalog.services.processing import ClaimedImage, ImageFailed, settle
from sansio.reasons import Reason


@dataclass
class ReconcileReport:
    requests_redispatched: list[int] = field(default_factory=list)
    images_requeued: list[int] = field(default_factory=list)
    images_given_up: int = 0
    requests_to_finalize: list[int] = field(default_factory=list)


def reconcile() -> ReconcileReport:
    """Say what to re-queue, and give up images that used every attempt.

    - a request still pending a lease period after upload: its dispatch message was lost;
    - a running image whose lease expired: its worker died (given up once attempts are used);
    - queued images of a request with no progress for a lease period: their messages were lost;
    - a request whose images are all settled but that is not complete: its finalize was lost.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IMAGE_LEASE_SECONDS)
    report = ReconcileReport()

    report.requests_redispatched = list(
        ProcessingRequest.objects.filter(status=RequestStatus.PENDING, created_at__lt=stale).values_list(
            "pk", flat=True
        )
    )

    expired = ProductImage.objects.filter(status=ImageStatus.RUNNING, lease_expires_at__lt=now)
    exhausted = [
        ClaimedImage(image, image.claim_token)
        for image in expired.filter(attempts__gte=settings.IMAGE_MAX_ATTEMPTS)
        if image.claim_token is not None
    ]
    if exhausted:
        stopped = ImageFailed(
            "the worker stopped while processing this image", code=Reason.INTERNAL, retryable=True
        )
        failures = [(claimed, stopped) for claimed in exhausted]
        settle([], [], failures)  # attempts are used up, so these settle as failed
        report.images_given_up = len(exhausted)
    report.images_requeued.extend(expired.values_list("pk", flat=True))

    stalled = ProcessingRequest.objects.filter(status=RequestStatus.PROCESSING, completed=False).filter(
        Q(last_progress_at__lt=stale) | Q(last_progress_at__isnull=True, started_at__lt=stale)
    )
    for request_pk in stalled.values_list("pk", flat=True):
        report.images_requeued.extend(queued_image_ids(request_pk, enqueued_before=stale))

    report.requests_to_finalize = list(
        ProcessingRequest.objects.filter(ProcessingRequest.settled_filter(), completed=False).values_list(
            "pk", flat=True
        )
    )
    return report
