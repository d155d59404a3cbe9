"""Webhook outbox: queued with the completion, delivered and retried from the database.

A delivery row is written in the same transaction that completes its request, so a completion is
never announced twice nor lost. Deliveries are claimed with a conditional UPDATE (the attempt count),
and retries are scheduled by ``next_attempt_at``, which the periodic reconciler reads.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.fetch import Fetcher, FetchError
from catalog.models import ProcessingRequest, WebhookAttempt, WebhookDelivery, WebhookStatus
from catalog.queueing import enqueue
from catalog.storage import absolute_url
from sansio.backoff import backoff_seconds
from sansio.webhooks import signed_headers

logger = logging.getLogger(__name__)

EVENT_COMPLETED = "request.completed"


def completion_body(request: ProcessingRequest) -> str:
    progress = {
        "products": request.products_total,
        "images": request.images_total,
        "done": request.images_done,
        "failed": request.images_failed,
        "cancelled": request.images_cancelled,
        "reused": request.images_reused,
    }
    return json.dumps(
        {
            "type": EVENT_COMPLETED,
            "request_id": str(request.request_id),
            "status": request.status,
            "name": request.name,
            "result_file": absolute_url(request.result_file, request.base_url)
            if request.result_file
            else None,
            "completed_at": request.completed_at.isoformat() if request.completed_at else None,
            "progress": progress,
        },
        separators=(",", ":"),
    )


def queue_completion(request: ProcessingRequest) -> None:
    """Call inside the transaction that completes ``request``; delivery starts once it commits."""
    delivery = WebhookDelivery.objects.create(
        request=request,
        message_id=f"msg_{uuid.uuid4().hex}",
        url=request.webhook_url,
        body=completion_body(request),
    )
    transaction.on_commit(lambda: enqueue("catalog.tasks.deliver_webhook", delivery.pk))


def due_delivery_ids() -> list[int]:
    return list(
        WebhookDelivery.objects.filter(status=WebhookStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )


def _backoff(attempt: int) -> timedelta:
    # 10 s, 20 s, 40 s … capped at an hour, each with ±25 % jitter so receivers are not stampeded.
    first = settings.WEBHOOK_RETRY_BASE_SECONDS
    return timedelta(seconds=backoff_seconds(attempt, first=first, cap=3600, spread=(0.75, 1.25)))


def _retryable(status_code: int | None) -> bool:
    """Timeouts, connection errors, 5xx, 3xx (we never follow a redirect) and 429 are worth another try."""
    return status_code is None or status_code >= 500 or 300 <= status_code < 400 or status_code == 429


def deliver(delivery_pk: int, fetcher: Fetcher) -> WebhookStatus | None:
    """One attempt, if the delivery is due and no one else holds it. Returns its new status."""
    now = timezone.now()
    hold = timedelta(seconds=settings.WEBHOOK_TIMEOUT * 3)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_pk, status=WebhookStatus.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + hold)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.get(pk=delivery_pk)
    body = delivery.body.encode()
    headers = signed_headers(settings.WEBHOOK_SECRET, delivery.message_id, int(time.time()), body)
    started = time.monotonic()
    status_code: int | None = None
    error = ""
    try:
        response = fetcher.request(
            "POST", delivery.url, body=body, headers=headers, total_timeout=settings.WEBHOOK_TIMEOUT
        )
        status_code = response.status
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except FetchError as exc:
        error = str(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(delivery, status_code, error, duration_ms)


def _record(
    delivery: WebhookDelivery, status_code: int | None, error: str, duration_ms: int
) -> WebhookStatus:
    now = timezone.now()
    update: dict[str, Any]
    if not error:
        outcome, update = WebhookStatus.DELIVERED, {"delivered_at": now}
    elif _retryable(status_code) and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        outcome, update = WebhookStatus.PENDING, {"next_attempt_at": now + _backoff(delivery.attempts)}
    else:
        outcome, update = WebhookStatus.FAILED, {}
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            attempted_at=now,
            status_code=status_code,
            error=error[:1000],
            duration_ms=duration_ms,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(
            status=outcome, **update
        )
    log = logger.info if outcome == WebhookStatus.DELIVERED else logger.warning
    log(
        "webhook %s attempt %d to %s: %s",
        delivery.message_id,
        delivery.attempts,
        delivery.url,
        error or "delivered",
    )
    return outcome


def delivery_log(request: ProcessingRequest) -> list[dict[str, Any]]:
    deliveries = WebhookDelivery.objects.filter(request=request).prefetch_related("attempt_log")
    return [
        {
            "id": delivery.message_id,
            "url": delivery.url,
            "status": delivery.status,
            "attempts": [
                {
                    "number": attempt.number,
                    "at": attempt.attempted_at,
                    "status_code": attempt.status_code,
                    "error": attempt.error or None,
                    "duration_ms": attempt.duration_ms,
                }
                for attempt in delivery.attempt_log.all()
            ],
            "next_attempt_at": delivery.next_attempt_at if delivery.status == WebhookStatus.PENDING else None,
            "delivered_at": delivery.delivered_at,
        }
        for delivery in deliveries
    ]
