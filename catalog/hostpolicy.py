"""What we owe each image host, and what a bad one costs us: per host, shared by a machine's workers.

- **A breaker.** After ``breaker_after`` connections in a row that timed out or were refused, the
  host is *open*: its images fail at once, without a connection, with a reason naming the host and
  why ("img.example.com is not answering: 8 timeouts in a row"). After ``breaker_seconds`` one image
  is let through as a probe (the others still fail fast): a probe that gets any HTTP answer closes
  the breaker, one that fails opens it again for another ``breaker_seconds``.
- **A cap on connections.** At most ``connections`` exchanges with one host at a time; a download
  waits for a free one until its own deadline (it re-checks the breaker while it waits, so the queue
  behind a wedged host empties as soon as the breaker opens).
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
import time
from collections.abc import Iterator
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

    def __post_init__(self) -> None:
        if self.connections < 1 or self.breaker_after < 1:
            raise ValueError("connections and breaker_after must be at least 1")
        if not (self.breaker_seconds > 0 and self.retry_after_max > 0):
            raise ValueError("breaker_seconds and retry_after_max must be positive")


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
    def admitted(self, key: str, shown: str, wait: float) -> Iterator[None]:
        """Hold one of the host's connection slots; HostUnavailable or HostThrottled instead when the
        host must not be contacted now (also while waiting), FetchError (retryable) if no slot freed
        within ``wait`` seconds."""
        probe = self.check(key, shown)
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
    )
    return HostPolicy(Path(settings.VAR_DIR) / "hosts", limits)
