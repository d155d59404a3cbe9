"""The total deadline of one exchange, enforced on its socket.

Per-read timeouts alone let a server drip one byte per read (in the status line, headers or chunk
sizes) for hours. So each exchange has a ``Deadline``; the ``Watchdog`` thread shuts its socket down
when it passes, and the connections of ``GUARDED_POOL_CLASSES`` hand their socket to the deadline of
the exchange that is sending on them (``guarded_by``) before they wait for the answer's head.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse


class Deadline:
    """The end of one exchange, and the socket to shut down when it passes."""

    def __init__(self, at: float, seconds: float) -> None:
        self.at = at
        self.seconds = seconds  # for messages
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._paused_at = 0.0  # while paused: when it was (monotonic); 0.0 when running
        self.waited = 0.0  # seconds spent paused (see ``paused``)
        self.watchdog: Watchdog | None = None  # the one watching it, told again after a pause
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.at - (self._paused_at or time.monotonic())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The clock stops meanwhile (a wait for a host's connection slot: our turn, not the host's
        time); the end moves later by as long, unless it had passed already. ``waited`` adds up
        every such wait."""
        started = time.monotonic()
        with self._lock:
            pausing = not (self.expired or self._done)
            if pausing:
                self._paused_at = started
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                self.waited += elapsed
                if pausing:
                    self.at += elapsed
                    self._paused_at = 0.0
            if pausing and self.watchdog is not None:  # it dropped this deadline if it came due meanwhile
                self.watchdog.watch(self)

    def passed(self) -> bool:
        return self.expired or self.remaining() <= 0

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                _shutdown(sock)

    def set_timeout(self, seconds: float) -> None:
        with self._lock:
            if self._sock is not None and not self.expired:
                # A server that closes after its response (HTTP/1.0, "Connection: close") has had its
                # socket closed by http.client once the body is read: the next read just says so.
                with contextlib.suppress(OSError):
                    self._sock.settimeout(max(seconds, 0.001))

    def expire(self) -> None:
        with self._lock:
            if self._done or self._paused_at:  # a paused one is watched again when its pause ends
                return
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)

    def detach(self) -> None:
        """Forget the socket (before its connection goes back to the pool or is closed)."""
        with self._lock:
            self._sock = None

    def finish(self) -> None:
        """The exchange is over: ``expire`` does nothing from now on."""
        with self._lock:
            self._done = True
            self._sock = None

    @property
    def done(self) -> bool:
        return self._done


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One thread that expires deadlines when they pass (which shuts their sockets down)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        deadline.watchdog = self
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._seq), deadline))
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                # Woken only when this one is due first: its wait ends at the first one's time, and
                # waking it for every download (most end long before their deadline) only cost a
                # thread switch each.
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    _, _, deadline = heapq.heappop(self._heap)
                    if deadline.at > now and not deadline.done:  # moved later by a pause
                        heapq.heappush(self._heap, (deadline.at, next(self._seq), deadline))
                        continue
                    deadline.expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


# .deadline: the Deadline of the exchange this thread is sending, while it sends (guarded_by). A
# thread-local because urllib3 opens the connection inside urlopen, out of the caller's reach.
_sending = threading.local()


@contextlib.contextmanager
def guarded_by(deadline: Deadline) -> Iterator[None]:
    """While open, a guarded connection this thread sends on gives its socket to ``deadline``."""
    _sending.deadline = deadline
    try:
        yield
    finally:
        _sending.deadline = None


def _attach_to_deadline(conn: HTTPConnection) -> None:
    deadline: Deadline | None = getattr(_sending, "deadline", None)
    if deadline is not None and conn.sock is not None:
        deadline.attach(conn.sock)


class _GuardedHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _attach_to_deadline(self)
        return super().getresponse()


class _GuardedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _attach_to_deadline(self)
        return super().getresponse()


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


# For urllib3.PoolManager.pool_classes_by_scheme.
GUARDED_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": _GuardedHTTPPool,
    "https": _GuardedHTTPSPool,
}
