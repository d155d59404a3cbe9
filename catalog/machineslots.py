"""A counting semaphore shared by every process of a machine: ``count`` lock files, one held per slot.

A slot is an ``flock`` on one of the files, so the kernel gives it back when its process dies: a
worker killed mid-transform, or mid-download, never leaks one. Waiting is polling (from 1 ms up to
``pause_max``): flock cannot wait for "any one of" several files, and a blocking wait on one of them
could sleep while another is free.

One thread of a process polls a name's slots at a time; the process's other waiting threads wait for
it on a lock. A host's 128 connection slots polled by every waiting download thread (160 threads in 4
processes, 32 of them waiting) made each poll 384 system calls per thread and each tiny image take 12 s.
A poll starts at a random slot, so taking one of many free slots costs a probe or two, not a scan.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_pollers: dict[str, threading.Lock] = {}  # per name: the one thread of this process that polls
_pollers_lock = threading.Lock()


# A child forked while a thread of its parent polled must not inherit that lock taken.
os.register_at_fork(after_in_child=_pollers.clear)


def _poller(base: Path) -> threading.Lock:
    with _pollers_lock:
        return _pollers.setdefault(str(base), threading.Lock())


class MachineSlots:
    def __init__(self, directory: Path, name: str, count: int, *, pause_max: float = 0.01) -> None:
        if count < 1:
            raise ValueError("a semaphore needs at least one slot")
        directory.mkdir(parents=True, exist_ok=True)
        self.base = directory / name
        self.count = count
        self.pause_max = pause_max

    def try_take(self) -> int | None:
        """A descriptor holding one slot (close it to give the slot back), or None if all are taken."""
        # From a random slot: with many taken, a scan from the first would probe all of those first.
        start = random.randrange(self.count)  # noqa: S311 - spreading probes, not a secret
        for step in range(self.count):
            n = (start + step) % self.count
            fd = os.open(f"{self.base}.slot{n}", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def take(self, between: Callable[[], None] = lambda: None) -> int:
        """Wait for a slot; ``between`` runs after each pause and may raise to stop waiting."""
        fd = self.try_take()
        if fd is not None:
            return fd
        poller = _poller(self.base)
        while not poller.acquire(timeout=self.pause_max):  # another thread of this process polls
            between()
        try:
            pause = 0.001
            while (fd := self.try_take()) is None:
                time.sleep(pause)
                pause = min(pause * 2, self.pause_max)
                between()
            return fd
        finally:
            poller.release()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        fd = self.take()
        try:
            yield
        finally:
            os.close(fd)  # closing releases the flock


class ProcessThenMachine:
    """``with`` it: one of this process's slots (a semaphore), then one of the machine's.

    For transforms: each pool process lets one of its threads transform at a time, and the machine
    as many processes as it has cores, however many processes wait on slow hosts meanwhile.
    """

    def __init__(self, process: threading.BoundedSemaphore, machine: MachineSlots) -> None:
        self.process = process
        self.machine = machine
        self._held = threading.local()

    def __enter__(self) -> None:
        self.process.acquire()
        try:
            self._held.fd = self.machine.take()
        except BaseException:
            self.process.release()
            raise

    def __exit__(self, *exc: object) -> None:
        os.close(self._held.fd)
        self.process.release()
