"""A doorbell for the embedded broker: a process that puts a message wakes the consumers at once.

kombu's filesystem transport has nothing to wait on, so an idle consumer sleeps its polling interval
between looks at the queue folder, and every hop of a request (upload to dispatch, dispatch to its
batches, the last batch to finalize) waits half of it on average: with 50 ms, a 1,000-image
request lost ~0.1 s of its ~8 s to these waits, and an 8-image one half of its time.

Each consumer makes a named pipe (FIFO) in a shared folder and waits on it (``select``) instead of
sleeping; whoever puts a message writes a byte into every pipe there. Named pipes are plain POSIX
(Linux and macOS) and need no server. A consumer that died leaves its pipe without a reader, which
the next ring sees (ENXIO) and removes. The polling interval stays as the fallback, so a missed ring
(a producer on another machine sharing the folder) costs what it cost before, no more.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import select
import uuid
import weakref

_SUFFIX = ".fifo"
_open_doorbells: weakref.WeakSet[Doorbell] = weakref.WeakSet()


def ring(folder: str) -> None:
    """Wake every consumer that waits on a doorbell in ``folder``."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if name.endswith(_SUFFIX) and not name.startswith("."):  # "." names are still being made
            _ring_one(os.path.join(folder, name))


def _ring_one(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader: its consumer is gone
            _remove(path)
        return
    try:
        os.write(fd, b"\0")
    except BlockingIOError:
        pass  # the pipe is full: rung many times already and not yet answered, which is enough
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class Doorbell:
    """One consumer's pipe in ``folder``, made by ``listen`` (or the first wait), removed by ``close``."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._path = ""
        self._read_fd = -1
        self._write_fd = -1  # our own writer: without one, the read end sees end-of-file, not silence
        self._pid = -1

    def wait(self, seconds: float) -> bool:
        """Return when rung (since the last wait: True), or after ``seconds`` (False)."""
        fd = self.listen()
        ready, _, _ = select.select([fd], [], [], seconds)
        if not ready:
            return False
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass  # emptied: the next ring wakes the next wait
        return True

    def wake(self) -> None:
        """Ring this doorbell only, from this process (for example, from another thread)."""
        if self._pid == os.getpid():
            # Full: rung already. Closed by another thread meanwhile: nobody is left to wake.
            with contextlib.suppress(OSError):
                os.write(self._write_fd, b"\0")

    def close(self) -> None:
        if self._pid != os.getpid():
            return
        self._pid = -1  # first, so a wake from another thread stops writing before the pipe closes
        _remove(self._path)
        for fd in (self._read_fd, self._write_fd):
            os.close(fd)

    def listen(self) -> int:
        """Make this process's pipe, if not yet made: rings from now on are kept for the next wait."""
        if self._pid == os.getpid():
            return self._read_fd
        os.makedirs(self.folder, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex}{_SUFFIX}"
        making = os.path.join(self.folder, "." + name)  # open before it is visible: a ring meanwhile
        os.mkfifo(making, 0o600)  # would find no reader and remove it
        self._read_fd = os.open(making, os.O_RDONLY | os.O_NONBLOCK)
        self._write_fd = os.open(making, os.O_WRONLY | os.O_NONBLOCK)
        self._path = os.path.join(self.folder, name)
        os.rename(making, self._path)
        self._pid = os.getpid()
        _open_doorbells.add(self)
        return self._read_fd

    def _forget_in_child(self) -> None:
        # A forked child holds copies of the parent's pipe ends: closing them keeps the parent's pipe
        # readerless once the parent is gone, so a ring can tell it is stale. The file stays: it is
        # the parent's.
        if self._pid != -1:
            for fd in (self._read_fd, self._write_fd):
                os.close(fd)
        self._pid = -1


def _after_fork_in_child() -> None:
    for doorbell in list(_open_doorbells):
        doorbell._forget_in_child()
    _open_doorbells.clear()


def _close_all() -> None:
    for doorbell in list(_open_doorbells):
        doorbell.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)  # a killed process's pipe is removed by the next ring instead
