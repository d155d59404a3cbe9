"""What we owe each image host, and what a bad one costs us: per host, shared by a machine's workers.

- **A breaker.** After ``breaker_after`` connections in a row that timed out or were refused, the
  host is *open*: its images fail at once, without a connection, with a reason naming the host and
  why ("img.example.com is not answering: 8 timeouts in a row"). After ``breaker_seconds`` one image
  is let through as a probe (the others still fail fast): a probe that gets any HTTP answer closes
  the breaker, one that fails opens it again for another ``breaker_seconds``.
- **A cap on connections.** At most ``connections`` exchanges with one host at a time; a download
  waits for a free one until its own deadline (it re-checks the breaker while it waits, so the queue
  behind a wedged host empties as soon as the breaker opens).
- **A first wave.** A worker process sends at most ``first_wave`` downloads at once to a host that
  has not answered it lately (``proven_seconds``), as a crawler starts slow on a host it does not know.
  A download past that raises ``HostBusy`` instead of waiting, and its batch parks the image
  (``when_turn``) without a thread or a connection until one of the wave ends or the host answers. A
  host that accepts connections and never answers then holds ``first_wave`` of a process's download
  threads until its breaker opens, not all of them while other hosts' images queue behind it. This
  state is the process's own, in memory: what it has seen of each host.
- **Retry-After.** A 429 or 503 with ``Retry-After`` (seconds or an HTTP date, honoured up to
  ``retry_after_max``) stops every download from that host until then: they fail at once as
  retryable, with ``retry_after`` telling ``services.settle`` how long the retry waits in the database
  (its ``not_before``), so the wait holds neither a worker nor a connection.

The state lives in small files under one directory (``VAR_DIR/hosts``), so every worker process with
the same ``VAR_DIR`` (the processes of one machine) shares it: a host's JSON file, replaced whole
(``os.replace``) and changed under an ``flock`` of its own lock file; connection slots are ``flock``s
on numbered files, which the kernel releases when a process dies, so a killed worker never leaks one.
A host with nothing to remember has no file: the cost of a healthy host is a ``stat`` per download.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings

from catalog.fetch import FetchError
from catalog.machineslots import MachineSlots
from sansio.reasons import Reason

logger = logging.getLogger(__name__)

_THROTTLING = frozenset({429, 503})
_POLL_MAX = 0.05  # waiting for a connection slot: the longest pause
_SLOTS_KEPT = 4096  # hosts whose connection slots a process keeps made


class HostUnavailable(FetchError):
    """The host's breaker is open: its images fail now, without a connection, and are not retried."""

    def __init__(self, message: str, code: Reason) -> None:
        super().__init__(message, code=code, retryable=False)


class HostBusy(FetchError):
    """The host has not answered this process lately and its first wave of downloads is out: this one
    waits for its turn (``HostPolicy.when_turn``) rather than hold a thread meanwhile."""

    def __init__(self, shown: str, key: str) -> None:
        super().__init__(
            f"{shown} has not answered yet: waiting for its first downloads",
            code=Reason.TIMEOUT,
            retryable=True,
        )
        self.turn_key = key


class HostThrottled(FetchError):
    """The host asked us to wait (Retry-After): try this image again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, code=Reason.HTTP_ERROR, retryable=True)  # it answered 429 or 503
        self.retry_after = retry_after


@dataclass
class HostState:
    timeouts: int = 0  # in the current streak of connections that got no answer
    refusals: int = 0
    open_until: float = 0.0  # wall clock: fail fast until then, then let one probe through
    not_before: float = 0.0  # wall clock: the host's Retry-After

    @property
    def streak(self) -> int:
        return self.timeouts + self.refusals

    @property
    def clean(self) -> bool:
        return self.streak == 0 and self.not_before <= time.time()

    def cause(self) -> Reason:
        """The breaker's code: what most of its streak was (a refused connection: unreachable)."""
        return Reason.TIMEOUT if self.timeouts >= self.refusals else Reason.UNREACHABLE

    def why(self) -> str:
        parts = []
        if self.timeouts:
            parts.append(f"{self.timeouts} timeout{'s' if self.timeouts != 1 else ''}")
        if self.refusals:
            parts.append(f"{self.refusals} refused connection{'s' if self.refusals != 1 else ''}")
        return f"{' and '.join(parts)} in a row"


@dataclass(frozen=True)
class HostLimits:
    connections: int = 16  # per host, on this machine
    breaker_after: int = 5  # consecutive timeouts or refused connections
    breaker_seconds: float = 30.0  # open this long before a probe
    retry_after_max: float = 3600.0  # a longer Retry-After is honoured for this long
    first_wave: int = 0  # per process, to a host it has not seen answer lately; 0: no limit
    proven_seconds: float = 600.0  # an answer counts as "lately" for this long

    def __post_init__(self) -> None:
        if self.connections < 1 or self.breaker_after < 1:
            raise ValueError("connections and breaker_after must be at least 1")
        if self.first_wave < 0:
            raise ValueError("first_wave must be 0 (no limit) or more")
        if not (self.breaker_seconds > 0 and self.retry_after_max > 0 and self.proven_seconds > 0):
            raise ValueError("breaker_seconds, retry_after_max and proven_seconds must be positive")


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from now (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class HostPolicy:
    """Breaker, connection cap and Retry-After per host (see the module docstring). Thread-safe."""

    def __init__(self, directory: Path, limits: HostLimits | None = None) -> None:
        self.directory = directory
        self.limits = limits or HostLimits()
        directory.mkdir(parents=True, exist_ok=True)
        # Each host's connection slots, made once (not a mkdir and a file name hashed per download);
        # forgotten all at once past _SLOTS_KEPT hosts, so a catalogue of many hosts cannot grow it.
        self._slots: dict[str, MachineSlots] = {}
        # The first wave (module docstring), this process's: when each host last answered it
        # (monotonic), downloads out to hosts that had not, and images waiting for their turn.
        self._ramp_lock = threading.Lock()
        self._answered_at: dict[str, float] = {}
        self._trying: Counter[str] = Counter()
        self._wave_since: dict[str, float] = {}  # when the first wave now out to a host began
        self._failing: set[str] = set()  # hosts whose last connection here timed out or was refused
        self._turns: dict[str, list[Callable[[], None]]] = {}

    def _connection_slots(self, key: str) -> MachineSlots:
        slots = self._slots.get(key)
        if slots is None:
            if len(self._slots) >= _SLOTS_KEPT:
                self._slots.clear()
            slots = MachineSlots(
                self.directory, _file_name(key), self.limits.connections, pause_max=_POLL_MAX
            )
            self._slots[key] = slots
        return slots

    # --- before a connection ------------------------------------------------------------------------

    @contextlib.contextmanager
    def admitted(self, key: str, shown: str, wait: float, *, first_wave: bool = False) -> Iterator[None]:
        """Hold one of the host's connection slots; HostUnavailable or HostThrottled instead when the
        host must not be contacted now (also while waiting), FetchError (retryable) if no slot freed
        within ``wait`` seconds. With ``first_wave`` (a caller that can park its image), HostBusy
        when the host's first wave is out (module docstring)."""
        try:
            probe = self.check(key, shown)
        except (HostUnavailable, HostThrottled):
            self._wake(key, every=True)  # the images parked for it fail (or wait) the same way now
            raise
        trial = first_wave and self._join_first_wave(key, shown)
        try:
            with self._connection(key, shown, wait, probe):
                yield
        finally:
            if trial:
                self._leave_first_wave(key)

    @contextlib.contextmanager
    def _connection(self, key: str, shown: str, wait: float, probe: bool) -> Iterator[None]:
        slots = self._connection_slots(key)
        until = time.monotonic() + wait

        def still_waiting() -> None:
            nonlocal probe
            if time.monotonic() >= until:
                raise FetchError(
                    f"{shown} had no free connection of its {self.limits.connections} in time: "
                    "our other downloads from it held them all",
                    code=Reason.TIMEOUT,
                    retryable=True,
                )
            # The breaker may have opened, or a Retry-After come, while this one waited.
            probe = probe or self.check(key, shown)

        fd = slots.take(still_waiting)
        try:
            if not probe:
                self.check(key, shown)  # the slot's last holder may have timed out or been told to wait
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # --- the first wave (this process's own) -------------------------------------------------------

    def when_turn(self, key: str, turn: Callable[[], None]) -> None:
        """Call ``turn`` (from the thread that frees it, or now) once a download to ``key`` may go:
        one of its first wave ended, or it answered. ``turn`` must be quick: it hands the image on."""
        with self._ramp_lock:
            waiting = self._wave_full(key)
            if waiting:
                self._turns.setdefault(key, []).append(turn)
        if not waiting:
            turn()

    def unanswered_for(self, key: str) -> float:
        """Seconds since this process's first wave now out to ``key`` began (0: none is out)."""
        with self._ramp_lock:
            since = self._wave_since.get(key)
        return 0.0 if since is None else time.monotonic() - since

    def _wave_full(self, key: str) -> bool:
        """Whether a download to ``key`` must wait for its turn (under the ramp lock)."""
        return not self._proven(key) and self._trying[key] >= self.limits.first_wave

    def _proven(self, key: str) -> bool:
        answered = self._answered_at.get(key)
        return answered is not None and time.monotonic() - answered < self.limits.proven_seconds

    def _join_first_wave(self, key: str, shown: str) -> bool:
        """Whether this download is one of the host's first wave (False: it answered lately, or there
        is no limit); HostBusy when the wave is full."""
        if self.limits.first_wave <= 0:
            return False
        with self._ramp_lock:
            if self._proven(key):
                return False
            if self._wave_full(key):
                raise HostBusy(shown, key)
            self._trying[key] += 1
            self._wave_since.setdefault(key, time.monotonic())
            return True

    def _leave_first_wave(self, key: str) -> None:
        """One of the wave ended. Its place goes to a parked image, unless the host did not answer it
        (timed out, refused): the wave's others are then likely to fail the same way, and the parked
        ones wait for the breaker to say so rather than make more connections before it opens."""
        with self._ramp_lock:
            self._trying[key] -= 1
            if self._trying[key] <= 0:
                del self._trying[key]
                self._wave_since.pop(key, None)
            failing = key in self._failing
        if not failing:
            self._wake(key, every=False)

    def _wake(self, key: str, *, every: bool) -> None:
        """Hand their turn to the images parked for ``key``: every one, or one (a wave's place freed)."""
        with self._ramp_lock:
            waiting = self._turns.get(key)
            if not waiting:
                return
            if every or self._proven(key):
                woken, self._turns[key] = waiting, []
            else:
                woken = [waiting.pop(0)]
            if not self._turns[key]:
                del self._turns[key]
        for turn in woken:
            turn()

    def _heard_from(self, key: str) -> None:
        with self._ramp_lock:
            if len(self._answered_at) >= _SLOTS_KEPT and key not in self._answered_at:
                self._answered_at.clear()  # a catalogue of many hosts cannot grow it: they ramp again
            self._answered_at[key] = time.monotonic()
            self._wave_since.pop(key, None)
            self._failing.discard(key)
        self._wake(key, every=True)

    # --- the breaker and Retry-After -----------------------------------------------------------------

    def check(self, key: str, shown: str) -> bool:
        """HostUnavailable while the breaker is open, HostThrottled while Retry-After runs; else whether
        this caller is the breaker's probe.

        The first caller after an open breaker's wait becomes its probe (the wait starts again for the
        others, so one image at a time finds out whether the host is back).
        """
        state = self._read(key)
        if state.clean:
            return False
        now = time.time()
        if state.not_before > now:
            wait = state.not_before - now
            raise HostThrottled(f"{shown} asked us to wait {_seconds(wait)} (Retry-After)", wait)
        if state.streak < self.limits.breaker_after:
            return False
        if state.open_until > now:
            raise HostUnavailable(f"{shown} is not answering: {state.why()}", state.cause())
        with self._locked(key):
            state = self._read(key)
            now = time.time()
            if state.streak < self.limits.breaker_after:
                return False
            if state.open_until > now:
                raise HostUnavailable(f"{shown} is not answering: {state.why()}", state.cause())
            state.open_until = now + self.limits.breaker_seconds
            self._write(key, state)
        logger.info("host %s: probing after %s", shown, state.why())
        return True

    # --- after a connection -------------------------------------------------------------------------

    def answered(self, key: str, shown: str, status: int, retry_after: str | None) -> None:
        """The host sent an HTTP answer: its streak ends; a 429 or 503 may set its Retry-After."""
        self._heard_from(key)
        now = time.time()
        wait = retry_after_seconds(retry_after, now) if status in _THROTTLING else None
        if wait is not None and wait > 0:
            wait = min(wait, self.limits.retry_after_max)
            with self._locked(key):
                state = self._read(key)
                state.timeouts = state.refusals = 0
                state.open_until = 0.0
                state.not_before = max(state.not_before, now + wait)
                self._write(key, state)
            logger.info(
                "host %s: HTTP %d, Retry-After %s: no download before then", shown, status, _seconds(wait)
            )
            return
        if not self._path(key).exists():
            return  # nothing remembered: the usual case costs one stat
        with self._locked(key):
            state = self._read(key)
            if state.streak:
                if state.streak >= self.limits.breaker_after:
                    logger.info("host %s answers again after %s", shown, state.why())
                state.timeouts = state.refusals = 0
                state.open_until = 0.0
                self._write(key, state)

    def failed(self, key: str, shown: str, *, timeout: bool) -> None:
        """A connection to the host timed out (``timeout``) or was refused, with no answer."""
        with self._ramp_lock:
            self._answered_at.pop(key, None)  # its next downloads are a first wave again
            if len(self._failing) >= _SLOTS_KEPT:
                self._failing.clear()
            self._failing.add(key)
        with self._locked(key):
            state = self._read(key)
            if timeout:
                state.timeouts += 1
            else:
                state.refusals += 1
            if state.streak >= self.limits.breaker_after:
                was_open = state.open_until > 0
                state.open_until = time.time() + self.limits.breaker_seconds
                if not was_open:
                    logger.warning("host %s is not answering (%s): breaker open", shown, state.why())
            self._write(key, state)

    def retry_after(self, key: str) -> float | None:
        """Seconds until the host's Retry-After ends, if it set one that is still running."""
        wait = self._read(key).not_before - time.time()
        return wait if wait > 0 else None

    # --- the files ----------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.directory / f"{_file_name(key)}.json"

    def _read(self, key: str) -> HostState:
        try:
            raw = self._path(key).read_bytes()
        except FileNotFoundError:
            return HostState()
        try:
            return HostState(**json.loads(raw))
        except (ValueError, TypeError):  # a file from another version: start afresh
            return HostState()

    def _write(self, key: str, state: HostState) -> None:
        path = self._path(key)
        if state.clean and state.open_until == 0:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        fd = os.open(self.directory / f"{_file_name(key)}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


@functools.lru_cache(maxsize=_SLOTS_KEPT)
def _file_name(key: str) -> str:
    """Readable and safe: the host and port, and a hash so two keys never share a file."""
    readable = re.sub(r"[^a-z0-9.-]+", "_", key.lower())[-80:]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def host_policy_from_settings() -> HostPolicy:
    limits = HostLimits(
        connections=settings.FETCH_HOST_CONNECTIONS,
        breaker_after=settings.FETCH_HOST_BREAKER_AFTER,
        breaker_seconds=settings.FETCH_HOST_BREAKER_SECONDS,
        retry_after_max=settings.FETCH_RETRY_AFTER_MAX,
        first_wave=settings.IMAGE_HOST_FIRST_DOWNLOADS,
    )
    return HostPolicy(Path(settings.VAR_DIR) / "hosts", limits)
