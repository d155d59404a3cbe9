"""One batch of images in a worker process: claimed, produced in threads, settled in one transaction.

The task (catalog/tasks.process_images) only hands over the ids and its process's resources
(catalog/workerresources.py); what happens to the batch is decided here.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from concurrent.futures import Executor, Future, as_completed
from concurrent.futures import TimeoutError as TimeLimitReached
from contextlib import AbstractContextManager

from catalog.fetch import Fetcher, slot_waits_end
from catalog.logcontext import request_id_context
from catalog.services import reuse
from catalog.services.claims import ClaimedImage, claim_images
from catalog.services.producing import (
    ImageFailed,
    ImageOutput,
    OutputLookup,
    produce_output,
    transform_options,
)
from catalog.services.settling import settle
from sansio.reasons import Reason

logger = logging.getLogger(__name__)

Outcome = ImageOutput | ImageFailed
TOOK_TOO_LONG = ImageFailed("processing took too long", code=Reason.TIMEOUT, retryable=True)


def process_batch(
    image_ids: list[int],
    claimant: str,
    *,
    threads: Executor,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    time_limit: float | None = None,
    lookup: OutputLookup = reuse.find_output,
) -> bool:
    """Claim the images, produce each in ``threads``, and settle what came of them; False when none
    could be claimed (done already, or another worker holds them: a duplicate delivery is a no-op).

    A retryable failure is given back as soon as it comes while others still run, so its backoff need
    not wait for a slow host's images in this batch. When the batch outlasts ``time_limit`` seconds
    (IMAGE_BATCH_TIME_LIMIT: the tasks' soft limit, within the claims' lease), what finished is kept
    and the rest goes back to the queue at once (not after a lease, no backoff).
    """
    claims = claim_images(image_ids, claimant)
    if not claims:
        return False
    # A download waiting for a host's connection gives up at the time limit: past it, this batch
    # has given its image back (and a thread waiting on would only hold one of the process's).
    waits_end = time.monotonic() + (time_limit if time_limit is not None else math.inf)
    with request_id_context(claims[0].image.request.request_id), slot_waits_end(waits_end):
        priors = reuse.priors(claims, transform_options)  # what each URL sent last time
        futures = {
            threads.submit(
                contextvars.copy_context().run,
                _outcome,
                c,
                priors.get(c.image.pk, reuse.NO_PRIOR),
                fetcher,
                transform_slots,
                lookup,
            ): c
            for c in claims
        }
        outcomes: dict[int, Outcome] = {}
        given_back: set[int] = set()
        backoff = True
        try:
            for future in as_completed(futures, timeout=time_limit):
                claimed, outcome = futures[future], future.result()
                if isinstance(outcome, ImageFailed) and outcome.retryable and _others_running(futures):
                    # Given back now, so its backoff need not wait for a slow host's images in this
                    # batch; the dispatcher sends it again once its not_before has passed.
                    settle([], [], [(claimed, outcome)])
                    given_back.add(claimed.image.pk)
                    continue
                outcomes[claimed.image.pk] = outcome
        except TimeLimitReached:
            _keep_what_finished(futures, outcomes, given_back)
            backoff = False
        _settle_outcomes(claims, outcomes, backoff=backoff)
    return True


def _outcome(
    claimed: ClaimedImage,
    prior: reuse.Prior,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    lookup: OutputLookup,
) -> Outcome:
    """One image's output, or why there is none: in a thread, so it raises nothing."""
    try:
        return produce_output(claimed, fetcher, transform_slots, prior, lookup)
    except ImageFailed as exc:
        return exc
    except Exception:
        logger.exception("unexpected error processing image %s", claimed.image.pk)
        return ImageFailed.internal()
    finally:
        memory = fetcher.memory
        if memory is not None:
            memory.release_mine()  # its body is transformed and stored, or dropped


def _others_running(futures: dict[Future[Outcome], ClaimedImage]) -> bool:
    return not all(future.done() for future in futures)


def _keep_what_finished(
    futures: dict[Future[Outcome], ClaimedImage], outcomes: dict[int, Outcome], given_back: set[int]
) -> None:
    """The time limit cut the batch: what finished is kept; the rest goes back to the queue at
    once (not after a lease), as TOOK_TOO_LONG."""
    for future in futures:
        future.cancel()  # those not started yet
    for future, claimed in futures.items():
        if claimed.image.pk not in outcomes and claimed.image.pk not in given_back:
            finished = future.done() and not future.cancelled()
            outcomes[claimed.image.pk] = future.result() if finished else TOOK_TOO_LONG
    logger.warning(
        "soft time limit: %d of %d images finished, the rest queued again",
        sum(outcome is not TOOK_TOO_LONG for outcome in outcomes.values()) + len(given_back),
        len(futures),
    )


def _settle_outcomes(claims: list[ClaimedImage], outcomes: dict[int, Outcome], *, backoff: bool) -> None:
    """Outputs as done, lasting failures as failed, the rest given back for a retry: one transaction."""
    settled = [(c, outcomes[c.image.pk]) for c in claims if c.image.pk in outcomes]
    done = [(c, o) for c, o in settled if isinstance(o, ImageOutput)]
    errors = [(c, o) for c, o in settled if isinstance(o, ImageFailed)]
    failed = [(c, error) for c, error in errors if not error.retryable]
    retry = [(c, error) for c, error in errors if error.retryable]
    settle(done, failed, retry, backoff=backoff)
