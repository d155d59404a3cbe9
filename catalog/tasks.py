"""Thin Celery tasks: take ids, call a service, decide whether to retry. No logic lives here."""

from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import timedelta
from functools import cache
from pathlib import Path

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from catalog import services, webhooks, workers
from catalog.fetch import Fetcher, fetcher_from_settings
from catalog.logcontext import request_id_context
from catalog.machineslots import MachineSlots, ProcessThenMachine
from catalog.models import ProcessingRequest, WebhookDelivery
from catalog.queueing import enqueue
from catalog.services import lifecycle, retention, reuse
from sansio.reasons import Reason

logger = logging.getLogger(__name__)


@cache
def _fetcher() -> Fetcher:
    """One pooled client per worker process, so images from one host reuse connections."""
    return fetcher_from_settings()


@cache
def _threads() -> ThreadPoolExecutor:
    """Per worker process: a batch's downloads overlap, and Pillow releases the GIL while it works."""
    return ThreadPoolExecutor(max_workers=settings.IMAGE_DOWNLOADS, thread_name_prefix="image")


@cache
def _transform_slots() -> ProcessThenMachine:
    """How many threads of a worker process may decode and encode at once (IMAGE_TRANSFORMS), and how
    many of a machine's processes (IMAGE_MACHINE_TRANSFORMS): more processes than cores can then wait
    on slow hosts without more transforms than cores thrashing the caches."""
    machine = MachineSlots(Path(settings.VAR_DIR) / "slots", "transform", settings.IMAGE_MACHINE_TRANSFORMS)
    return ProcessThenMachine(threading.BoundedSemaphore(settings.IMAGE_TRANSFORMS), machine)


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


Outcome = services.ImageOutput | services.ImageFailed
TOOK_TOO_LONG = services.ImageFailed("processing took too long", code=Reason.TIMEOUT, retryable=True)


def _produce(claimed: services.ClaimedImage, prior: reuse.Prior) -> Outcome:
    try:
        return services.produce_output(claimed, _fetcher(), _transform_slots(), prior)
    except services.ImageFailed as exc:
        return exc
    except Exception:
        logger.exception("unexpected error processing image %s", claimed.image.pk)
        return services.ImageFailed.internal()
    finally:
        memory = _fetcher().memory
        if memory is not None:
            memory.release_mine()  # its body is transformed and stored, or dropped


@shared_task(name="catalog.tasks.process_images", ignore_result=True, bind=True)
def process_images(self: Task[[list[int]], None], image_ids: list[int]) -> None:
    claims = services.claim_images(image_ids, workers.claimant_here(self.request.hostname or ""))
    if not claims:
        return  # done already, or another worker holds them: a duplicate delivery is a no-op
    with request_id_context(claims[0].image.request.request_id):
        priors = reuse.priors(claims, services.transform_options)  # what each URL sent last time
        futures = {
            _threads().submit(
                contextvars.copy_context().run, _produce, c, priors.get(c.image.pk, reuse.NO_PRIOR)
            ): c
            for c in claims
        }
        outcomes: dict[int, Outcome] = {}
        given_back: set[int] = set()
        backoff = True
        try:
            for future in as_completed(futures):
                claimed, outcome = futures[future], future.result()
                if (
                    isinstance(outcome, services.ImageFailed)
                    and outcome.retryable
                    and _others_running(futures)
                ):
                    # Given back now, so its backoff need not wait for a slow host's images in this
                    # batch; the dispatcher sends it again once its not_before has passed.
                    services.settle([], [], [(claimed, outcome)])
                    given_back.add(claimed.image.pk)
                    continue
                outcomes[claimed.image.pk] = outcome
        except SoftTimeLimitExceeded:
            # What finished is kept; the rest goes back to the queue at once (not after a lease).
            for future in futures:
                future.cancel()  # those not started yet
            for future, claimed in futures.items():
                if claimed.image.pk not in outcomes and claimed.image.pk not in given_back:
                    finished = future.done() and not future.cancelled()
                    outcomes[claimed.image.pk] = future.result() if finished else TOOK_TOO_LONG
            backoff = False
            logger.warning(
                "soft time limit: %d of %d images finished, the rest queued again",
                sum(outcome is not TOOK_TOO_LONG for outcome in outcomes.values()) + len(given_back),
                len(claims),
            )
        settled = [(c, outcomes[c.image.pk]) for c in claims if c.image.pk in outcomes]
        done = [(c, o) for c, o in settled if isinstance(o, services.ImageOutput)]
        errors = [(c, o) for c, o in settled if isinstance(o, services.ImageFailed)]
        failed = [(c, error) for c, error in errors if not error.retryable]
        retry = [(c, error) for c, error in errors if error.retryable]
        services.settle(done, failed, retry, backoff=backoff)
    send_batches()  # room freed: the next batch, of the request whose turn it is


def _others_running(futures: dict[Future[Outcome], services.ClaimedImage]) -> bool:
    return not all(future.done() for future in futures)


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
        webhooks.deliver(delivery_pk, _fetcher())


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
