"""Batches overlapping in one worker process: its next batch is claimed and downloading while the
last one's images still download or transform.

A Celery pool process runs one task at a time. When a task ran its whole batch, the process's cores
sat idle while the batch's first downloads waited on a far host, and its downloads sat idle while the
batch's last images transformed: at 300 ms to first byte the service made 0.40 of the plain Pillow
loop. Here a task hands its batch to a thread of the process and returns as soon as fewer than
``depth`` batches are in hand, so the process takes its next message at once; the batches share the
process's image threads, its transform slot and its download memory (catalog/workerresources.py).

A batch gives its room to the next batch (``free_room``) and ends later, when its images do, once
all it has left is transforms (its downloads over: the next batch's downloads then wait out a far
host's latency while these images transform, instead of after them), or once its images left running
all wait on hosts that have not answered (a wedged host's first wave, catalog/hostpolicy.py: such a
host holds the process's threads and batches only as far as its first wave). At most ``depth``
batches have given their room up at a time, so a process holds at most twice ``depth``. With the
process's download window, the next batch also waits until the images in hand are fewer than the
window's places and its floor (DownloadWindow.wait_for_room): a process takes what it can start
soon, and the rest waits in the worker, or the broker, for a process with idle cores.

The database stays the record: a batch is claimed, settled and its claims released as before; a
process that dies with batches in hand has its claims released by its worker (catalog/workers.py).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

from catalog.downloadwindow import DownloadWindow

logger = logging.getLogger(__name__)


class BatchPipeline:
    def __init__(self, depth: int, window: DownloadWindow | None = None, room_wait: float = 0.0) -> None:
        if depth < 1:
            raise ValueError("a pipeline holds at least one batch")
        self.depth = depth
        self.window = window
        self.room_wait = room_wait
        self._room = threading.BoundedSemaphore(depth)
        # As many again for batches that gave their room up (free_room) and still wait on a host.
        self._runners = ThreadPoolExecutor(max_workers=2 * depth, thread_name_prefix="batch")
        self._mine = threading.local()  # in a runner thread: its batch's free_room
        self._batches = 0  # started and not ended, whether they hold a room or gave it up
        self._given_up = 0  # of those, how many gave their room up (at most depth)
        self._ended = threading.Condition()

    def run(self, batch: Callable[[], None], images: Collection[int] = ()) -> None:
        """Wait until fewer than ``depth`` batches are in hand, and (with a window) until the images in
        hand are fewer than its places and floor, then start ``batch``, its ``images`` now in hand, in
        a thread."""
        self._room.acquire()
        if self.window is not None:
            # Past this wait the batch is taken anyway: images in hand that never leave (a bug) slow
            # the process's intake, they do not stop it.
            self.window.wait_for_room(self.room_wait)
            self.window.expect(images)
        with self._ended:
            self._batches += 1
        try:
            self._runners.submit(contextvars.copy_context().run, self._run_then_free, batch, images)
        except BaseException:
            self._end()
            self._room.release()
            if self.window is not None:
                self.window.forget(images)
            raise

    def free_room(self) -> None:
        """From a batch's own thread: its room goes to the next batch while this one ends (once;
        not while ``depth`` batches have given theirs up already)."""
        free = getattr(self._mine, "free", None)
        if free is not None:
            free()

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every batch to end (those that gave their room up too:
        their claims are this process's); whether they all did."""
        with self._ended:
            return self._ended.wait_for(lambda: self._batches == 0, timeout=timeout)

    def _end(self) -> None:
        with self._ended:
            self._batches -= 1
            self._ended.notify_all()

    def _run_then_free(self, batch: Callable[[], None], images: Collection[int]) -> None:
        # As Celery does in a task's process before each task: a connection past its age or broken
        # is closed (this thread's own: a thread keeps its connection from batch to batch).
        close_old_connections()
        gave_up = False  # only this thread (the batch's own) reads and writes it

        def give_up() -> None:
            nonlocal gave_up
            with self._ended:
                if gave_up or self._given_up >= self.depth:
                    return
                gave_up = True
                self._given_up += 1
            self._room.release()

        self._mine.free = give_up
        try:
            batch()
        except Exception:  # a batch's own failures are settled by it: this is a bug, or the database
            logger.exception("a batch of images ended with an error; its claims are released by the lease")
        finally:
            if self.window is not None:
                self.window.forget(images)  # those it never started (given back at its time limit)
            self._mine.free = None
            if gave_up:
                with self._ended:
                    self._given_up -= 1
            else:
                self._room.release()
            self._end()
