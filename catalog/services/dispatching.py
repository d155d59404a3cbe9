"""Feeding the workers from the database: few batches in the broker, requests served in turn.

The database is the record of what is left; the broker holds only the next few batches
(``IMAGE_BATCHES_IN_FLIGHT``). Whenever room frees (a batch settled, a request uploaded, the
reconciler's round), the next batches are chosen round-robin: between owners first (with
``REQUIRE_AUTH``; an anonymous request is its own owner), then between an owner's requests, the one
served longest ago going next. A one-image request uploaded behind a 100,000-image one so waits for
the batches already sent, not for the whole backlog, and the broker never holds a backlog to scan.

An image waits with ``enqueued_at`` empty; sending its batch sets it. A sent image not claimed a
lease later had its message lost (a worker killed with messages in hand): the reconciler, or a
worker's start-up, empties ``enqueued_at`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus

_DISPATCH_LOCK = 0x63617461  # PostgreSQL advisory lock key: one dispatcher decides at a time
# A request's last images go out in smaller batches: a LAST_SHARE of what it has left to send, at
# least LAST_BATCH_MIN images. A batch runs in one worker process, so a request's last full batch
# kept one core busy for its ~0.5 s while the others had nothing left (1,000 images in batches of
# 32: the last 0.5-1.5 s on one of 2 cores); and a small request is spread over the processes.
LAST_SHARE = 4
LAST_BATCH_MIN = 4


def batch_size(waiting: int, full: int) -> int:
    """The next batch's size for a request with ``waiting`` images to send, ``full`` a whole batch
    (never leaving fewer than LAST_BATCH_MIN behind on their own, where one batch can take them)."""
    size = min(full, waiting, max(LAST_BATCH_MIN, -(-waiting // LAST_SHARE)))
    return waiting if waiting - size < LAST_BATCH_MIN and waiting <= full else size


@dataclass
class _Turn:
    request_pk: int
    owner: object  # the owner's pk, or ("request", pk) for an anonymous request
    last_fed_at: datetime | None

    @property
    def served(self) -> datetime:
        return self.last_fed_at or datetime.min.replace(tzinfo=UTC)


def _next_turn(turns: list[_Turn]) -> _Turn:
    """The owner served longest ago (by its latest batch), then that owner's request served longest ago."""
    latest: dict[object, datetime] = {}
    for turn in turns:
        latest[turn.owner] = max(latest.get(turn.owner, turn.served), turn.served)
    owner = min(latest, key=lambda key: latest[key])
    return min((t for t in turns if t.owner == owner), key=lambda t: (t.served, t.request_pk))


def _active_requests() -> QuerySet[ProcessingRequest]:
    return ProcessingRequest.objects.filter(status=RequestStatus.PROCESSING, completed=False)


def waiting_images(request_pk: int, now: datetime) -> QuerySet[ProductImage]:
    """A request's images still to send, first rows first; a duplicate settles with its first."""
    return (
        ProductImage.objects.filter(
            request_id=request_pk,
            status=ImageStatus.QUEUED,
            enqueued_at__isnull=True,
            duplicate_of__isnull=True,
        )
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("id")
    )


def images_in_flight(request_pks: list[int], now: datetime) -> int:
    """Images sent and not yet settled: in the broker, in a worker's hands, or being processed."""
    stale = now - timedelta(seconds=settings.IMAGE_LEASE_SECONDS)
    sent = ProductImage.objects.filter(
        request_id__in=request_pks, status=ImageStatus.QUEUED, enqueued_at__gte=stale
    ).count()
    return sent + ProductImage.objects.filter(status=ImageStatus.RUNNING).count()


def batches_to_send() -> list[list[int]]:
    """Choose the next batches to fill the room in flight, and mark their images sent.

    The caller sends one ``process_images`` message per batch. If a send fails, the images stay
    marked and come back through the reconciler's lost-message rule a lease later.
    """
    full = settings.IMAGE_BATCH_SIZE
    with transaction.atomic():
        if connection.vendor == "postgresql":  # on SQLite, the IMMEDIATE transaction already serialises us
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DISPATCH_LOCK])
        now = timezone.now()
        turns = [
            _Turn(pk, owner_pk if owner_pk is not None else ("request", pk), last_fed_at)
            for pk, owner_pk, last_fed_at in _active_requests()
            .order_by("pk")  # ties (never served) go to the oldest upload
            .values_list("pk", "owner_id", "last_fed_at")
        ]
        if not turns:
            return []
        room = settings.IMAGE_BATCHES_IN_FLIGHT * full
        room -= images_in_flight([turn.request_pk for turn in turns], now)
        batches: list[list[int]] = []
        fed: dict[int, datetime] = {}
        while room > 0 and turns:
            turn = _next_turn(turns)
            # Up to LAST_SHARE batches' worth, to tell how many it has left (no COUNT of a backlog).
            waiting = waiting_images(turn.request_pk, now).values_list("pk", flat=True)
            ahead = list(waiting[: LAST_SHARE * full])
            ids = ahead[: min(batch_size(len(ahead), full), room)]
            if not ids:
                turns.remove(turn)  # nothing (more) to send for it now
                continue
            ProductImage.objects.filter(pk__in=ids).update(enqueued_at=now)  # before the next look
            batches.append(ids)
            room -= len(ids)
            # Distinct and increasing within this round, so the next choice sees who went last.
            turn.last_fed_at = fed[turn.request_pk] = now + timedelta(microseconds=len(batches))
        for request_pk, when in fed.items():
            ProcessingRequest.objects.filter(pk=request_pk).update(last_fed_at=when)
    return batches


def forget_sent(*, older_than: datetime | None = None) -> list[int]:
    """Sent images not yet claimed go back to waiting: their messages were lost (or may have been).

    ``older_than``: only those sent before then (the reconciler: a lease ago). Without it, all of
    them (a worker's start-up: a killed worker's messages in hand are gone). A message that was not
    lost after all is then sent twice, which is harmless: the second delivery claims nothing.
    """
    active = list(_active_requests().values_list("pk", flat=True))
    sent = ProductImage.objects.filter(
        request_id__in=active, status=ImageStatus.QUEUED, enqueued_at__isnull=False
    )
    if older_than is not None:
        sent = sent.filter(enqueued_at__lt=older_than)
    with transaction.atomic():
        ids = list(sent.values_list("pk", flat=True))
        ProductImage.objects.filter(pk__in=ids, status=ImageStatus.QUEUED).update(enqueued_at=None)
    return ids
