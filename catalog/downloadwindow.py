"""How many of a worker process's images may be in hand at once, from their download's start to their
transform's: as many as keep its transforms busy over the downloads' latency, and no more.

A process's batches start all their images at once, each in one of its IMAGE_DOWNLOADS threads: a
far host needs that many out to keep the cores busy (at 1 s to first byte and ~40 transforms a
second a process, ~46 downloads are out at any time). From a host next door the same images are all
downloaded at once and then wait for the process's one transform: every thread runnable at once
fighting for the GIL, every body held. On 2 cores, 1,000 local images ran at 60.2-60.7 images/s
with 128 threads a process against 64.9-73.4 with 16 (`python -m bench pipeline`'s service, 30
November).

So an image waits for a place here before its download, and leaves at its transform's start (or its
end, when it has no transform). The places are sized by Little's law: the transforms' rate times
how long a download takes, with headroom for downloads that come back together, plus ``floor``: a
host next door gets ``floor`` and a far one as many as its latency needs, up to ``ceiling`` (the
threads). Until both have been timed the window is the whole ``ceiling``, as before it existed, so
a far host's first wave is not held back while its latency is learnt. Places are handed out in the
order asked for, so a process's oldest batch finishes first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

# Weight of the newest download or transform in the running averages: a host's latency is learnt
# within ~20 images, and one slow download does not open the window wide.
SMOOTHING = 0.1
# Places beyond what the latency needs: downloads sent together come back together, and a far host's
# images queued for the transform keep it busy through a gap. At 1 s to first byte, 1,000 images ran
# at 58.0 and 58.1 images/s with 1.5 against 60.4 and 63.4 with 2.5 (the window then ~120 places).
HEADROOM = 2.5


class DownloadWindow:
    def __init__(self, floor: int, ceiling: int, transforms: int = 1) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"a window of {floor} to {ceiling} places")
        self.floor, self.ceiling, self.transforms = floor, ceiling, transforms
        self.inside = 0
        self.download_seconds: float | None = None  # running averages, None until timed
        self.transform_seconds: float | None = None
        self._lock = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()  # each held until its thread is let in

    @property
    def size(self) -> int:
        if self.download_seconds is None or not self.transform_seconds:
            return self.ceiling
        needed = HEADROOM * self.transforms * self.download_seconds / self.transform_seconds
        return min(self.ceiling, self.floor + math.ceil(needed))

    def enter(self, until: float = math.inf) -> bool:
        """Wait for a place, until ``until`` (time.monotonic()); whether one was given."""
        with self._lock:
            if not self._waiting and self.inside < self.size:
                self.inside += 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        timeout = -1.0 if until == math.inf else max(0.0, until - time.monotonic())
        if turn.acquire(timeout=timeout):
            return True
        with self._lock:
            try:
                self._waiting.remove(turn)
            except ValueError:  # let in between the timeout and here: the place is ours
                return True
        return False

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1
            self._let_in()

    def downloaded(self, seconds: float) -> None:
        """A download took ``seconds`` (a far host's time to first byte and body, or our own queue)."""
        with self._lock:
            self.download_seconds = _averaged(self.download_seconds, seconds)
            self._let_in()

    def transformed(self, seconds: float) -> None:
        with self._lock:
            self.transform_seconds = _averaged(self.transform_seconds, seconds)
            self._let_in()

    def _let_in(self) -> None:
        """The first waiting threads, as far as there are places (under the lock)."""
        size = self.size
        while self._waiting and self.inside < size:
            self.inside += 1
            self._waiting.popleft().release()


def _averaged(average: float | None, sample: float) -> float:
    return sample if average is None else average + SMOOTHING * (sample - average)


class Place:
    """One image's place in a window (none: no window), taken before its download and given back at
    its transform's start, or at its end when it has none."""

    def __init__(self, window: DownloadWindow | None) -> None:
        self.window = window
        self.held = False

    def take(self, until: float) -> bool:
        """Whether a place was given by ``until`` (always, without a window)."""
        if self.window is None:
            return True
        self.held = self.window.enter(until)
        return self.held

    def give_back(self) -> None:
        if self.held and self.window is not None:
            self.held = False
            self.window.leave()

    def downloaded(self, seconds: float) -> None:
        if self.window is not None:
            self.window.downloaded(seconds)

    def transformed(self, seconds: float) -> None:
        if self.window is not None:
            self.window.transformed(seconds)
