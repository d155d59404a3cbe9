"""One batch of images in a worker process: claimed, produced in threads, settled in one transaction
(more only while a slow host's images keep it running).

The task (catalog/tasks.process_images) only hands over the ids and its process's resources
(catalog/workerresources.py); what happens to the batch is decided here.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as TimeLimitReached
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from django.conf import settings

from catalog.downloadwindow import DownloadWindow
from catalog.fetch import Fetcher, FetchError, parking_images, slot_waits_end
from catalog.fetch.targets import parse_target
from catalog.logcontext import request_id_context
from catalog.services import reuse
from catalog.services.claims import ClaimedImage, claim_images
from catalog.services.producing import (
    ImageFailed,
    ImageOutput,
    OutputLookup,
    produce_output,
    transform_next,
    transform_options,
)
from catalog.services.settling import settle
from sansio.reasons import Reason

if TYPE_CHECKING:
    from catalog.hostpolicy import HostPolicy

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
    free_room: Callable[[], None] | None = None,
    window: DownloadWindow | None = None,
) -> bool:
    """Claim the images, produce each in ``threads``, and settle what came of them; False when none
    could be claimed (done already, or another worker holds them: a duplicate delivery is a no-op).

    A retryable failure is given back as soon as it comes while others still run, so its backoff need
    not wait for a slow host's images in this batch; and once the batch has run IMAGE_SETTLE_INTERVAL
    seconds, what finished is settled each interval while others still run, so a wedged host's images
    do not keep the good ones beside them from showing done. An image whose host has not answered
    this process yet may be parked (``_Runs``), and once all that still runs waits on such hosts,
    ``free_room`` lets the process take its next batch meanwhile. When the batch outlasts
    ``time_limit`` seconds (IMAGE_BATCH_TIME_LIMIT: the tasks' soft limit, within the claims' lease),
    what finished is kept and the rest goes back to the queue at once (not after a lease, no backoff).
    """
    claims = _claim(image_ids, claimant, window)
    if not claims:
        return False
    # A download waiting for a host's connection gives up at the time limit: past it, this batch
    # has given its image back (and a thread waiting on would only hold one of the process's).
    waits_end = time.monotonic() + (time_limit if time_limit is not None else math.inf)
    with request_id_context(claims[0].image.request.request_id), slot_waits_end(waits_end), parking_images():
        priors = reuse.priors(claims, transform_options)  # what each URL sent last time
        runs = _Runs(threads, contextvars.copy_context())

        produce = functools.partial(_outcome, window=window, waits_end=waits_end)

        def start(claimed: ClaimedImage) -> None:
            prior = priors.get(claimed.image.pk, reuse.NO_PRIOR)
            runs.start(claimed, produce, claimed, prior, fetcher, transform_slots, lookup)

        for claimed in claims:
            start(claimed)
        outcomes: dict[int, Outcome] = {}  # finished, not settled yet
        settled: set[int] = set()  # settled while others of the batch still ran
        backoff = True
        # From then on, while some images still run, what finished is settled each interval.
        settle_at = time.monotonic() + settings.IMAGE_SETTLE_INTERVAL
        try:
            while len(outcomes) + len(settled) < len(claims):
                finished = runs.next(until=waits_end, wake=settle_at)
                if finished is not None:
                    claimed, outcome = finished
                    if (
                        isinstance(outcome, ImageFailed)
                        and outcome.turn_key is not None
                        and fetcher.hosts is not None
                    ):
                        # Not sent: its host's first wave is out. Parked, holding no thread, until its turn.
                        runs.park(claimed, outcome, fetcher.hosts.unanswered_for(outcome.turn_key))
                        fetcher.hosts.when_turn(
                            outcome.turn_key, functools.partial(runs.resume, claimed, start)
                        )
                    elif isinstance(outcome, ImageFailed) and outcome.retryable and runs.others_running():
                        # Given back now, so its backoff need not wait for a slow host's images in this
                        # batch; the dispatcher sends it again once its not_before has passed.
                        settle([], [], [(claimed, outcome)])
                        settled.add(claimed.image.pk)
                    else:
                        outcomes[claimed.image.pk] = outcome
                elif runs.parked_due():  # only parked images are left, their host's wave out HOST_TURN_WAIT
                    parked = runs.give_back_parked()
                    settle([], [], parked)
                    settled.update(claimed.image.pk for claimed, _ in parked)
                interval = runs.others_running() and time.monotonic() >= settle_at
                if interval and outcomes:
                    # Images done while a slow or wedged host's images in this batch still run are
                    # shown done now, not when the slowest is (then again each interval).
                    _settle_outcomes(claims, outcomes, backoff=True)
                    settled.update(outcomes)
                    outcomes.clear()
                # Its room goes to the next batch once only transforms are left (the next one's
                # downloads then wait out a far host's latency while these transform), or once all
                # that still runs holds only threads of unanswered hosts' first waves.
                if free_room is not None and (
                    runs.only_transforms_left() or (interval and runs.only_unanswered(fetcher.hosts))
                ):
                    free_room()
                if interval:
                    settle_at = time.monotonic() + settings.IMAGE_SETTLE_INTERVAL
        except TimeLimitReached:
            runs.stop(outcomes, settled)
            backoff = False
        _settle_outcomes(claims, outcomes, backoff=backoff)
    return True


def _claim(image_ids: list[int], claimant: str, window: DownloadWindow | None) -> list[ClaimedImage]:
    claims = claim_images(image_ids, claimant)
    if window is not None:  # those not claimed (done, or another worker's) will not ask for a place
        window.forget(set(image_ids) - {claimed.image.pk for claimed in claims})
    return claims


# How long a host may leave this process's first wave to it unanswered before the images parked for it
# stop waiting in their batch (catalog/hostpolicy.py): a far host's first answer comes sooner, and they
# start then; past it, once nothing else of their batch runs, they go back to the database (not an
# attempt) until the wave must have been answered or timed out (at least this long), and the batch
# ends, so a host that never answers holds only its first wave, not the process's batches.
HOST_TURN_WAIT = 2.0
TURN_MARGIN = 1.0  # past the wave's timeouts, for its breaker to be written


class _Runs:
    """A batch's images running in the process's threads: started, parked while their host's first wave
    is out (catalog/hostpolicy.py), started again at their turn (from whichever thread hands it), and
    their outcomes taken in the order they finish."""

    def __init__(self, threads: Executor, context: contextvars.Context) -> None:
        self.threads = threads
        self.context = context  # the batch's: its request id, its waits' end, parking
        # Reentrant: ``start`` submits under it (so a stopped batch starts nothing), and an executor
        # may run the call at once in the caller's thread (bench/imagepath.py's Inline), whose
        # transform_next signal (_at_transform) then takes it again.
        self.lock = threading.RLock()
        self.running: dict[int, tuple[ClaimedImage, Future[Outcome]]] = {}
        self.parked: dict[int, tuple[ClaimedImage, ImageFailed, float]] = {}  # and when the wave began
        # Running and not at their transform yet: downloading, hashing, or ending with a reused output.
        self.before_transform: set[int] = set()
        self.ended = False
        # What finished, in order; None: only transforms are left (a wake for its loop).
        self._finished: queue.SimpleQueue[tuple[ClaimedImage, Outcome] | None] = queue.SimpleQueue()

    def only_unanswered(self, hosts: HostPolicy | None) -> bool:
        """Whether every image still running is from a host whose first wave here has been out
        unanswered for HOST_TURN_WAIT or more (none parked: those wait on no thread)."""
        if hosts is None:
            return False
        with self.lock:
            urls = [claimed.image.input_url for claimed, _ in self.running.values()]
        return bool(urls) and all(
            key is not None and hosts.unanswered_for(key) >= HOST_TURN_WAIT for key in map(_host_key, urls)
        )

    def start(self, claimed: ClaimedImage, fn: Callable[..., Outcome], *args: object) -> None:
        with self.lock:
            if self.ended:  # at its turn after the time limit: the batch gave it back already
                return
            context = self.context.copy()
            context.run(transform_next.set, functools.partial(self._at_transform, claimed.image.pk))
            try:
                future = self.threads.submit(context.run, fn, *args)
            except RuntimeError:  # the process is stopping: given back as unfinished
                self._finished.put((claimed, TOOK_TOO_LONG))
                return
            self.running[claimed.image.pk] = (claimed, future)
            self.before_transform.add(claimed.image.pk)
        future.add_done_callback(lambda done: self._done(claimed, done))

    def _at_transform(self, pk: int) -> None:
        """From the image's thread: its download is over, its transform next."""
        with self.lock:
            self.before_transform.discard(pk)
            last = not self.before_transform and not self.parked
        if last:
            self._finished.put(None)

    def only_transforms_left(self) -> bool:
        """Whether all that still runs of the batch is at its transform: none before it, none parked."""
        with self.lock:
            return bool(self.running) and not self.before_transform and not self.parked

    def _done(self, claimed: ClaimedImage, future: Future[Outcome]) -> None:
        with self.lock:
            self.before_transform.discard(claimed.image.pk)
        if not future.cancelled():  # cancelled by stop(), which settles it
            self._finished.put((claimed, future.result()))

    def park(self, claimed: ClaimedImage, busy: ImageFailed, unanswered: float) -> None:
        """Parked while its host's wave, out for ``unanswered`` seconds, is out up to HOST_TURN_WAIT."""
        wave_began = time.monotonic() - unanswered
        with self.lock:
            self.parked[claimed.image.pk] = (claimed, busy, wave_began)

    def resume(self, claimed: ClaimedImage, start: Callable[[ClaimedImage], None]) -> None:
        """Its turn came: started again, unless the batch gave it back meanwhile."""
        with self.lock:
            if self.parked.pop(claimed.image.pk, None) is None:
                return
        start(claimed)

    def next(self, *, until: float, wake: float) -> tuple[ClaimedImage, Outcome] | None:
        """The next run to finish, its claim and outcome; None at ``wake``, once only transforms
        are left (only_transforms_left), or once only parked images are left and they are due to go back
        (parked_due); TimeLimitReached at ``until``."""
        while True:
            with self.lock:
                turn_ends = self._turn_ends()
            at = min(until, wake, turn_ends)
            try:
                left = None if at == math.inf else max(0.0, at - time.monotonic())
                finished = self._finished.get(timeout=left)
            except queue.Empty:
                if time.monotonic() >= until:
                    raise TimeLimitReached from None
                if time.monotonic() >= wake or self.parked_due():
                    return None
                continue
            if finished is None:
                return None
            claimed, outcome = finished
            with self.lock:
                self.running.pop(claimed.image.pk, None)
            return claimed, outcome

    def _turn_ends(self) -> float:
        """When the parked images are due to go back, if nothing else runs (under the lock)."""
        if self.running or not self.parked:
            return math.inf
        return min(began for _, _, began in self.parked.values()) + HOST_TURN_WAIT

    def parked_due(self) -> bool:
        with self.lock:
            return time.monotonic() >= self._turn_ends()

    def give_back_parked(self) -> list[tuple[ClaimedImage, ImageFailed]]:
        """The parked images, as failures that go back to the database (_turn_missed)."""
        with self.lock:
            parked, self.parked = list(self.parked.values()), {}
        now = time.monotonic()
        return [(claimed, _turn_missed(busy, now - wave_began)) for claimed, busy, wave_began in parked]

    def others_running(self) -> bool:
        with self.lock:
            return bool(self.running or self.parked)

    def stop(self, outcomes: dict[int, Outcome], settled: set[int]) -> None:
        """The time limit cut the batch: what finished is kept; the rest (running, not started, parked)
        goes back to the queue at once (not after a lease), as TOOK_TOO_LONG."""
        with self.lock:
            self.ended = True
            unfinished = [(pk, future) for pk, (_, future) in self.running.items()]
            parked, self.parked = list(self.parked.items()), {}
        for _, future in unfinished:
            future.cancel()  # those not started yet
        for pk, future in unfinished:
            if pk not in outcomes and pk not in settled:
                finished = future.done() and not future.cancelled()
                outcome = future.result() if finished else TOOK_TOO_LONG
                parking = isinstance(outcome, ImageFailed) and outcome.turn_key is not None
                outcomes[pk] = TOOK_TOO_LONG if parking else outcome
        for pk, (_, busy, wave_began) in parked:
            outcomes[pk] = _turn_missed(busy, time.monotonic() - wave_began)
        logger.warning(
            "soft time limit: %d of %d images finished, the rest queued again",
            sum(outcome is not TOOK_TOO_LONG for outcome in outcomes.values()) + len(settled),
            len(outcomes) + len(settled),
        )


def _host_key(url: str) -> str | None:
    """The host policy's key for an image's URL (its first hop's host), None if it has none."""
    try:
        return parse_target(url).origin
    except FetchError:
        return None


def _turn_missed(busy: ImageFailed, unanswered: float) -> ImageFailed:
    """A parked image going back to the database until its host's wave must have had an answer or
    timed out (FETCH_CONNECT_TIMEOUT + FETCH_READ_TIMEOUT after it began: by then a wedged host's
    breaker is open and the image fails at once), and at least HOST_TURN_WAIT: not sent, so not an
    attempt (services.settle)."""
    decided = settings.FETCH_CONNECT_TIMEOUT + settings.FETCH_READ_TIMEOUT - unanswered
    wait = max(HOST_TURN_WAIT, decided + TURN_MARGIN)
    return ImageFailed(str(busy), code=busy.code, retryable=True, retry_after=wait, turn_key=busy.turn_key)


def _outcome(
    claimed: ClaimedImage,
    prior: reuse.Prior,
    fetcher: Fetcher,
    transform_slots: AbstractContextManager[object],
    lookup: OutputLookup,
    *,
    window: DownloadWindow | None,
    waits_end: float,
) -> Outcome:
    """One image's output, or why there is none: in a thread, so it raises nothing."""
    try:
        return produce_output(
            claimed, fetcher, transform_slots, prior, lookup, window=window, waits_end=waits_end
        )
    except ImageFailed as exc:
        return exc
    except Exception:
        logger.exception("unexpected error processing image %s", claimed.image.pk)
        return ImageFailed.internal()
    finally:
        memory = fetcher.memory
        if memory is not None:
            memory.release_mine()  # its body is transformed and stored, or dropped


def _settle_outcomes(claims: list[ClaimedImage], outcomes: dict[int, Outcome], *, backoff: bool) -> None:
    """Outputs as done, lasting failures as failed, the rest given back for a retry: one transaction."""
    settled = [(c, outcomes[c.image.pk]) for c in claims if c.image.pk in outcomes]
    done = [(c, o) for c, o in settled if isinstance(o, ImageOutput)]
    errors = [(c, o) for c, o in settled if isinstance(o, ImageFailed)]
    failed = [(c, error) for c, error in errors if not error.retryable]
    retry = [(c, error) for c, error in errors if error.retryable]
    settle(done, failed, retry, backoff=backoff)
