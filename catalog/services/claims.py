"""Claiming images for a worker: one conditional UPDATE moves those still claimable to RUNNING with a
lease and a fresh claim token, and only the holder of that token may settle them (services.settling).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import ImageStatus, ProductImage


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
    ``claimant`` names the worker process (see ``services.recovery``), so that claims of a process
    known to be gone can be released at once rather than a lease later.
    """
    now = timezone.now()
    token = uuid.uuid4()
    claimable = Q(status=ImageStatus.QUEUED) | Q(status=ImageStatus.RUNNING, lease_expires_at__lt=now)
    # A transaction: on SQLite it queues for the write lock with the other writers (config/sqlite),
    # where an UPDATE on its own would poll for it in SQLite's busy handler.
    with transaction.atomic():
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
