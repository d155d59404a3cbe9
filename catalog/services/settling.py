"""Settling a batch in one transaction: each outcome is written only while its claim still holds,
its duplicates and its request's counters with it, and a request with nothing left is finalized.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from catalog import metrics
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage
from catalog.queueing import enqueue
from catalog.services import reuse
from catalog.services.claims import ClaimedImage
from catalog.services.producing import ImageFailed, ImageOutput
from catalog.services.rowupdates import update_rows_by_key
from sansio.backoff import backoff_seconds

# The name these lines have always had, as in services.producing: kept over the split.
logger = logging.getLogger("catalog.services.processing")


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
        "output_quality": output.quality,
        "output_score": output.score,
        "warning": output.warning[:2000],
        "error": "",
        "error_code": "",
        "reused": output.reused,
    }


def _failed_fields(failure: ImageFailed, note: str = "") -> dict[str, Any]:
    return {
        "status": ImageStatus.FAILED,
        "error": f"{failure}{note}"[:2000],
        "error_code": failure.code.value,
    }


def retry_delay(attempt: int) -> float:
    """2 s, 4 s, 8 s … up to 5 minutes after a failed attempt, with full jitter: a host that failed
    many images is not hit again all at once."""
    return backoff_seconds(attempt, first=2, cap=300, spread=(0.0, 1.0))


def settle(
    done: list[tuple[ClaimedImage, ImageOutput]],
    failed: list[tuple[ClaimedImage, ImageFailed]],
    retry: list[tuple[ClaimedImage, ImageFailed]],
    *,
    backoff: bool = True,
) -> list[ClaimedImage]:
    """Record a batch's outcomes in one transaction; returns the claims given back for a retry.

    Only a claim still held (same token, still running) settles anything, so a worker that lost its
    lease to another changes nothing. Duplicates of a settled image settle with it, and each
    request's counters move by one UPDATE. An image given back waits in the database for the
    dispatcher (services.dispatching): after a backoff, or, with ``backoff=False``, at once.
    """
    batch = _Settlement(timezone.now())
    outcomes = [(claimed, _output_fields(output), "images_done") for claimed, output in done]
    outcomes += [(claimed, _failed_fields(failure), "images_failed") for claimed, failure in failed]
    released: list[ClaimedImage] = []
    with transaction.atomic():
        reuse.record(done)
        for claimed, failure in retry:
            if failure.turn_key is not None:  # never sent (its host's first wave was out): no attempt
                if _still_claimed(claimed).update(
                    status=ImageStatus.QUEUED,
                    attempts=F("attempts") - 1,
                    lease_expires_at=None,
                    enqueued_at=None,
                    not_before=_not_before(batch.now, claimed, failure, backoff=False),
                    download_seconds=claimed.image.download_seconds,
                ):
                    released.append(claimed)
            elif _out_of_budget(claimed):  # the last failure's code, and why it is the last
                spent = claimed.image.download_seconds
                note = f" (gave up after {claimed.attempt} attempts, {spent:.0f} s of downloads)"
                outcomes.append((claimed, _failed_fields(failure, note), "images_failed"))
            elif claimed.attempt >= settings.IMAGE_MAX_ATTEMPTS:
                gave_up = _failed_fields(failure, f" (gave up after {claimed.attempt} attempts)")
                outcomes.append((claimed, gave_up, "images_failed"))
            elif _still_claimed(claimed).update(
                status=ImageStatus.QUEUED,
                error=str(failure)[:2000],
                error_code=failure.code.value,
                lease_expires_at=None,
                enqueued_at=None,
                not_before=_not_before(batch.now, claimed, failure, backoff=backoff),
                download_seconds=claimed.image.download_seconds,
            ):
                released.append(claimed)
        batch.settle(outcomes)
        batch.write_counters()
    return released


def _not_before(
    now: datetime, claimed: ClaimedImage, failure: ImageFailed, *, backoff: bool
) -> datetime | None:
    """When the dispatcher may send a retry: after its backoff (unless given back at once), and never
    before the host's Retry-After ends."""
    wait = retry_delay(claimed.attempt) if backoff else 0.0
    if failure.retry_after is not None:
        wait = max(wait, failure.retry_after)
    return now + timedelta(seconds=wait) if wait > 0 else None


def _out_of_budget(claimed: ClaimedImage) -> bool:
    """Another attempt would have too little of IMAGE_TOTAL_BUDGET left to connect and be answered."""
    left = settings.IMAGE_TOTAL_BUDGET - claimed.image.download_seconds
    return left < settings.FETCH_CONNECT_TIMEOUT


_CLAIM_KEY_FIELDS = ("id", "status", "claim_token")  # a claim holds its image while all three still match


def _claim_key(claimed: ClaimedImage) -> tuple[int, ImageStatus, uuid.UUID]:
    """The values of _CLAIM_KEY_FIELDS while this claim holds its image."""
    return claimed.image.pk, ImageStatus.RUNNING, claimed.token


def _still_claimed(claimed: ClaimedImage) -> QuerySet[ProductImage]:
    """The image, only while this claim still holds it (not re-claimed after a lease expiry)."""
    return ProductImage.objects.filter(**dict(zip(_CLAIM_KEY_FIELDS, _claim_key(claimed), strict=True)))


def _write_while_claimed(updates: list[tuple[ClaimedImage, dict[str, Any]]]) -> set[int]:
    """Write each image's fields while its claim holds (as ``_still_claimed``); returns the pks written.

    One statement for every image that sets the same fields, not an ORM update each (see rowupdates).
    """
    written: set[int] = set()
    groups: dict[tuple[str, ...], list[tuple[ClaimedImage, dict[str, Any]]]] = defaultdict(list)
    for claimed, fields in updates:
        groups[tuple(fields)].append((claimed, fields))
    for names, group in groups.items():
        rows = [[*fields.values(), *_claim_key(claimed)] for claimed, fields in group]
        changed = update_rows_by_key(ProductImage, names, _CLAIM_KEY_FIELDS, rows)
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
    processed: list[tuple[int, int, bool]] = field(default_factory=list)  # (input, output) bytes, reused

    def settle(self, outcomes: list[tuple[ClaimedImage, dict[str, Any], str]]) -> None:
        """Write each outcome whose claim still holds, and count it."""
        finished = {"lease_expires_at": None, "finished_at": self.now}
        updates = [(claimed, {**fields, **finished}) for claimed, fields, _ in outcomes]
        written = _write_while_claimed(updates)
        for (claimed, fields), (_, _, counter) in zip(updates, outcomes, strict=True):
            image = claimed.image
            if image.pk not in written:
                continue
            self.settled[image.pk] = (image, fields, counter)
            self.counts[(image.request_id, counter)] += 1
            self.counts[(image.request_id, "images_reused")] += bool(fields.get("reused"))
            if fields["status"] == ImageStatus.DONE:  # counted once: only the claim's holder settles
                self.processed.append((fields["input_bytes"], fields["output_bytes"], fields["reused"]))
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
            copied = copies.update(**fields)
            self.counts[(image.request_id, counter)] += copied
            self.counts[(image.request_id, "images_reused")] += copied if fields.get("reused") else 0

    def write_counters(self) -> None:
        self.settle_duplicates()
        for (request_pk, counter), n in self.counts.items():
            if not n:
                continue
            increment = {counter: F(counter) + n}
            ProcessingRequest.objects.filter(pk=request_pk).update(last_progress_at=self.now, **increment)
        mark_products_processed(self.products)
        if self.processed:
            processed = list(self.processed)
            transaction.on_commit(lambda: metrics.count_processed(processed))
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
