"""Bytes of downloaded images held by a worker process, bounded: downloads wait for room, not threads.

A download reserves its body's bytes before reading them (the announced length at once, a body of
unknown length chunk by chunk) and its thread gives them all back once the image is transformed and
stored (``release_mine``). While the process holds ``capacity`` bytes, a download waits (within its
own deadline) for others to give theirs back. A body larger than the whole capacity is let through
when nothing else is held, so no image is refused for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least one byte")
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._mine = threading.local()

    def reserve(self, n: int, remaining: Callable[[], float]) -> bool:
        """Wait for room for ``n`` more bytes; False if the deadline passed first."""
        with self._cond:
            while self.used and self.used + n > self.capacity:
                left = remaining()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))
            self.used += n
            self.peak = max(self.peak, self.used)
        self._mine.bytes = getattr(self._mine, "bytes", 0) + n
        return True

    def release_mine(self) -> None:
        """Give back every byte this thread reserved."""
        n = getattr(self._mine, "bytes", 0)
        if not n:
            return
        self._mine.bytes = 0
        with self._cond:
            self.used -= n
            self._cond.notify_all()
