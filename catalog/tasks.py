"""Thin Celery tasks: take ids, call a service, decide whether to retry. No logic lives here."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from functools import cache

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from catalog import services, webhooks
from catalog.batching import batched
from catalog.fetch import Fetcher, fetcher_from_settings
from catalog.logcontext import request_id_context
from catalog.models import ProcessingRequest, WebhookDelivery

logger = logging.getLogger(__name__)


@cache
def _fetcher() -> Fetcher:
    """One pooled client per worker process, so images from one host reuse connections."""
    return fetcher_from_settings()


def _backoff_seconds(attempt: int) -> float:
    # Exponential with full jitter, so a host that failed many images is not hit again all at once.
    return float(random.uniform(0, min(300, 2**attempt)))  # noqa: S311 - jitter, not security


@shared_task(name="catalog.tasks.dispatch_request", ignore_result=True)
def dispatch_request(request_pk: int) -> None:
    request_id = ProcessingRequest.objects.values_list("request_id", flat=True).get(pk=request_pk)
    with request_id_context(request_id):
        services.start_request(request_pk)
        _enqueue_images(services.queued_image_ids(request_pk))


def _enqueue_images(image_ids: Iterable[int]) -> None:
    for chunk in batched(image_ids, services.ENQUEUE_BATCH):
        services.mark_enqueued(list(chunk))
        for image_id in chunk:
            process_image.delay(image_id)


@shared_task(name="catalog.tasks.process_image", ignore_result=True)
def process_image(image_id: int) -> None:
    claimed = services.claim_image(image_id)
    if claimed is None:
        return  # done already, or another worker holds it: a duplicate delivery is a no-op
    with request_id_context(claimed.image.request.request_id):
        try:
            output = services.produce_output(claimed, _fetcher())
        except services.ImageFailed as exc:
            _settle_failure(claimed, str(exc), retryable=exc.retryable)
        except SoftTimeLimitExceeded:
            _settle_failure(claimed, "processing took too long", retryable=True)
        except Exception:
            logger.exception("unexpected error processing image %s", image_id)
            _settle_failure(claimed, "internal error while processing the image", retryable=True)
        else:
            services.finish_image(claimed, output)


def _settle_failure(claimed: services.ClaimedImage, message: str, *, retryable: bool) -> None:
    if not retryable:
        services.fail_image(claimed, message)
    elif services.release_image(claimed, message):
        countdown = _backoff_seconds(claimed.attempt)
        process_image.apply_async((claimed.image.pk,), countdown=countdown)


@shared_task(name="catalog.tasks.finalize_request", ignore_result=True)
def finalize_request(request_pk: int) -> None:
    request_id = ProcessingRequest.objects.values_list("request_id", flat=True).get(pk=request_pk)
    with request_id_context(request_id):
        services.finalize_request(request_pk)


@shared_task(name="catalog.tasks.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_pk: int) -> None:
    request_id = WebhookDelivery.objects.values_list("request__request_id", flat=True).get(pk=delivery_pk)
    with request_id_context(request_id):
        webhooks.deliver(delivery_pk, _fetcher())


@shared_task(name="catalog.tasks.reconcile", ignore_result=True)
def reconcile() -> None:
    report = services.reconcile()
    for request_pk in report.requests_redispatched:
        dispatch_request.delay(request_pk)
    _enqueue_images(report.images_requeued)
    for request_pk in report.requests_to_finalize:
        finalize_request.delay(request_pk)
    for delivery_pk in webhooks.due_delivery_ids():  # webhook retries are scheduled in the database
        deliver_webhook.delay(delivery_pk)
    if report.requests_redispatched or report.images_requeued or report.images_given_up:
        logger.warning(
            "reconciler: %d requests re-dispatched, %d images re-queued, %d given up",
            len(report.requests_redispatched),
            len(report.images_requeued),
            report.images_given_up,
        )
