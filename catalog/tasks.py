"""Thin Celery tasks: take ids, call a service, decide whether to retry. No logic lives here."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError

from catalog import services, webhooks, workerresources, workers
from catalog.logcontext import request_id_context
from catalog.models import ProcessingRequest, WebhookDelivery
from catalog.queueing import enqueue
from catalog.services import lifecycle, retention

logger = logging.getLogger(__name__)


def send_batches() -> None:
    """Fill the room in flight with the next batches, requests in turn (services.dispatching)."""
    for batch in services.batches_to_send():
        enqueue("catalog.tasks.process_images", batch)


# Control tasks are retried on database errors (SQLite "database is locked" under a long write);
# each is idempotent, and the reconciler would redo them anyway, only later.
RETRY_ON = (DatabaseError,)


@shared_task(
    name="catalog.tasks.dispatch_request",
    ignore_result=True,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    max_retries=5,
)
def dispatch_request(request_pk: int) -> None:
    request_id = ProcessingRequest.objects.values_list("request_id", flat=True).get(pk=request_pk)
    with request_id_context(request_id):
        services.start_request(request_pk)
        send_batches()


@shared_task(
    name="catalog.tasks.feed", ignore_result=True, autoretry_for=RETRY_ON, retry_backoff=True, max_retries=5
)
def feed() -> None:
    send_batches()


@shared_task(name="catalog.tasks.process_images", ignore_result=True, bind=True)
def process_images(self: Task[[list[int]], None], image_ids: list[int]) -> None:
    """Hands the batch to the process's pipeline (catalog/batchpipeline.py) and returns once it has
    room for another, so the process takes its next batch while this one still runs."""
    claimant = workers.claimant_here(self.request.hostname or "")

    def batch() -> None:
        claimed = services.process_batch(
            image_ids,
            claimant,
            threads=workerresources.image_threads(),
            fetcher=workerresources.fetcher(),
            transform_slots=workerresources.transform_slots(),
            time_limit=settings.IMAGE_BATCH_TIME_LIMIT,
            lookup=workerresources.find_output,
            free_room=workerresources.batch_pipeline().free_room,
            window=workerresources.download_window(),
        )
        if claimed:
            send_batches()  # room freed: the next batch, of the request whose turn it is

    workerresources.batch_pipeline().run(batch, image_ids)


@shared_task(
    name="catalog.tasks.finalize_request",
    ignore_result=True,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    max_retries=5,
)
def finalize_request(request_pk: int) -> None:
    request_id = ProcessingRequest.objects.values_list("request_id", flat=True).get(pk=request_pk)
    with request_id_context(request_id):
        services.finalize_request(request_pk)


@shared_task(
    name="catalog.tasks.deliver_webhook",
    ignore_result=True,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    max_retries=5,
)
def deliver_webhook(delivery_pk: int) -> None:
    request_id = WebhookDelivery.objects.values_list("request__request_id", flat=True).get(pk=delivery_pk)
    with request_id_context(request_id):
        webhooks.deliver(delivery_pk, workerresources.fetcher())


@shared_task(name="catalog.tasks.reconcile", ignore_result=True)
def reconcile() -> None:
    report = services.reconcile()
    for request_pk in report.requests_redispatched:
        dispatch_request.delay(request_pk)
    for request_pk in lifecycle.cancelled_leftovers():  # re-queued for a retry after the cancel
        lifecycle.cancel_queued_images(request_pk)
    send_batches()  # what was given back, and anything whose retry is due
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


@shared_task(name="catalog.tasks.purge_expired", ignore_result=True)
def purge_expired() -> None:
    """The beat's retention run (when RETENTION_DAYS is set)."""
    retention.purge(timedelta(days=settings.RETENTION_DAYS))
