"""Thin Celery tasks: take ids, call a service, decide whether to retry. No logic lives here."""

from __future__ import annotations

import contextvars
import logging
import random
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from functools import cache
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from catalog import services, webhooks
from catalog.batching import batched
from catalog.fetch import Fetcher, fetcher_from_settings
from catalog.logcontext import request_id_context
from catalog.machineslots import MachineSlots, ProcessThenMachine
from catalog.models import ProcessingRequest, WebhookDelivery
from catalog.services import lifecycle

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


def _backoff_seconds(attempt: int) -> float:
    # Exponential with full jitter, so a host that failed many images is not hit again all at once.
    return float(random.uniform(0, min(300, 2**attempt)))  # noqa: S311 - jitter, not security


def enqueue_images(image_ids: Iterable[int]) -> None:
    # One UPDATE per few hundred images, not per task: on SQLite each write waits for the one lock that
    # the workers, already claiming the first batches, also need (a 1,000-image request's first second
    # had the cores half idle with a write per task).
    for group in batched(image_ids, services.ENQUEUE_BATCH):
        services.mark_enqueued(list(group))
        for chunk in batched(group, settings.IMAGE_BATCH_SIZE):
            process_images.delay(list(chunk))


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
        enqueue_images(services.queued_image_ids(request_pk))


Outcome = services.ImageOutput | services.ImageFailed


def _produce(claimed: services.ClaimedImage) -> Outcome:
    try:
        return services.produce_output(claimed, _fetcher(), _transform_slots())
    except services.ImageFailed as exc:
        return exc
    except Exception:
        logger.exception("unexpected error processing image %s", claimed.image.pk)
        return services.ImageFailed("internal error while processing the image", retryable=True)
    finally:
        memory = _fetcher().memory
        if memory is not None:
            memory.release_mine()  # its body is transformed and stored, or dropped


@shared_task(name="catalog.tasks.process_images", ignore_result=True)
def process_images(image_ids: list[int]) -> None:
    claims = services.claim_images(image_ids)
    if not claims:
        return  # done already, or another worker holds them: a duplicate delivery is a no-op
    with request_id_context(claims[0].image.request.request_id):
        try:
            futures = {_threads().submit(contextvars.copy_context().run, _produce, c): c for c in claims}
            outcomes: dict[int, Outcome] = {}
            for future in as_completed(futures):
                claimed, outcome = futures[future], future.result()
                if (
                    isinstance(outcome, services.ImageFailed)
                    and outcome.retryable
                    and _others_running(futures, future)
                ):
                    _give_back([(claimed, outcome)])  # now: its retry need not wait for a slow host's images
                    continue
                outcomes[claimed.image.pk] = outcome
        except SoftTimeLimitExceeded:
            services.settle([], [], [(claimed, "processing took too long") for claimed in claims])
            raise
        settled = [(c, outcomes[c.image.pk]) for c in claims if c.image.pk in outcomes]
        done = [(c, o) for c, o in settled if isinstance(o, services.ImageOutput)]
        errors = [(c, o) for c, o in settled if isinstance(o, services.ImageFailed)]
        _give_back(errors, done)


def _others_running(futures: dict[Future[Outcome], services.ClaimedImage], this: Future[Outcome]) -> bool:
    return any(not future.done() for future in futures if future is not this)


def _give_back(
    errors: list[tuple[services.ClaimedImage, services.ImageFailed]],
    done: list[tuple[services.ClaimedImage, services.ImageOutput]] | None = None,
) -> None:
    """Settle outcomes; re-queue the retryable failures after their backoff or the host's Retry-After."""
    failed = [(c, str(error)) for c, error in errors if not error.retryable]
    retry = [(c, str(error)) for c, error in errors if error.retryable]
    asked = {c.image.pk: error.retry_after or 0.0 for c, error in errors}  # a host's Retry-After
    for claimed in services.settle(done or [], failed, retry):
        countdown = max(_backoff_seconds(claimed.attempt), asked[claimed.image.pk])
        process_images.apply_async(([claimed.image.pk],), countdown=countdown)


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
    enqueue_images(report.images_requeued)
    for request_pk in lifecycle.cancelled_leftovers():  # re-queued for a retry after the cancel
        lifecycle.cancel_queued_images(request_pk)
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
