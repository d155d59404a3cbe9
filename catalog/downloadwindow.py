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
threads). Until a download has come back, the window starts at the floor and doubles every
FIRST_WAVE_DOUBLING while nothing comes back, as TCP's slow start does: a host next door answers
before it has grown much, and a far one has every thread out within a fifth of a second. It was the
whole ``ceiling`` then: from a host next door every thread downloaded at once at the start, and the
first transforms waited ~0.5 s for the GIL among them. Until a transform is timed, one is taken to
last TRANSFORM_PRIOR.
Places are handed out in the order asked for, so a process's oldest batch finishes first. A
download out much longer than the average stops counting (OVERDUE_TIMES), so a wedged host never
holds the places other hosts need.

The window also decides when its process takes its next batch (catalog/batchpipeline.py): once it
has fewer images in hand before their transform (placed, waiting, or handed over and yet to ask)
than its places and its floor. A process took batches while it had room for batches, whatever they
held, so at a request's end one process could have many images left and the other none: with
1,000 images in batches of 32, one core ran 0.5-1.5 s alone at the end.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Iterable

# Weight of the newest download or transform in the running averages: a host's latency is learnt
# within ~20 images, and one slow download does not open the window wide.
SMOOTHING = 0.1
# Places beyond what the latency needs: downloads sent together come back together, and a far host's
# images queued for the transform keep it busy through a gap. At 1 s to first byte, 1,000 images ran
# at 58.0 and 58.1 images/s with 1.5 against 60.4 and 63.4 with 2.5 (the window then ~120 places).
HEADROOM = 2.5
# A download out longer than this many times the average (and at least OVERDUE_MIN seconds) stops
# counting against the window: a wedged or slow host's downloads would otherwise hold its places until
# their read timeouts, and another host's images wait behind them (`python -m bench hosts`: the 200
# good images beside a wedged host all done after 11.9 s; 5.2 s with a minimum of 1 s; 3.7 s with
# 0.5 s, as without a window). They are still bounded, by the threads and the host's first wave
# (catalog/hostpolicy.py).
OVERDUE_TIMES = 4.0
OVERDUE_MIN = 0.5
# A transform's time until one is timed: a 2 MP photo's here is 15-20 ms; shorter errs towards more
# places, so a far host's first wave is held back less.
TRANSFORM_PRIOR = 0.01
# Until a download has come back, the window doubles every this many seconds from the floor: 8, 16,
# ... 128 places by 0.2 s. Growing linearly with the oldest download's age (2.5 places a 10 ms) had
# every thread out only by 0.48 s, and 1,000 images from a host 1 s away ran at 0.70 of the plain
# loop, against 0.73 with every thread out at once.
FIRST_WAVE_DOUBLING = 0.05
# While the window grows with its oldest download's age, how often it lets waiters in at most.
GROWTH_TICK = 0.01
# How often a process waiting to take its next batch (wait_for_room) looks again at most.
ROOM_LOOK = 0.05


class _Turn:
    """A thread waiting for a place: its lock is released, and ``place`` set, when it is let in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.place = -1


class DownloadWindow:
    def __init__(self, floor: int, ceiling: int, transforms: int = 1) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"a window of {floor} to {ceiling} places")
        self.floor, self.ceiling, self.transforms = floor, ceiling, transforms
        self.inside = 0
        self.download_seconds: float | None = None  # running averages, None until timed
        self.transform_seconds: float | None = None
        self._lock = threading.Lock()
        self._waiting: deque[_Turn] = deque()
        self._ids = itertools.count()
        self._out: dict[int, float] = {}  # places whose download is out: when it began
        # Lets threads in as downloads become overdue (only while some wait), one thread a window.
        self._watch = threading.Condition(self._lock)
        self._watcher: threading.Thread | None = None
        self._watching_until = math.inf  # when the watcher wakes next, unless notified
        # Images handed to this process that have not asked for a place yet (expect, forget): with
        # those placed and waiting, its images in hand, which decide when it takes its next batch
        # (wait_for_room).
        self._expected: set[int] = set()
        self._in_hand_fell = threading.Condition(self._lock)
        self._room_waiters = 0

    @property
    def size(self) -> int:
        return self.size_at(time.monotonic())

    def size_at(self, now: float) -> int:
        """Places for the latency known at ``now``: by Little's law from the averages, or until a
        download has come back, the floor doubled for every FIRST_WAVE_DOUBLING the oldest is out."""
        if self.download_seconds is None:
            age = now - next(iter(self._out.values()), now)
            return min(self.ceiling, math.floor(self.floor * 2 ** (age / FIRST_WAVE_DOUBLING)))
        transform = self.transform_seconds or TRANSFORM_PRIOR
        needed = HEADROOM * self.transforms * self.download_seconds / transform
        return min(self.ceiling, self.floor + math.ceil(needed))

    def _grows_at(self, now: float) -> float:
        """When the window will have grown by a place, while it grows with the oldest download's age
        (math.inf: it does not). No sooner than GROWTH_TICK from now."""
        if self.download_seconds is not None or not self._out:
            return math.inf
        size = self.size_at(now)
        if size >= self.ceiling:
            return math.inf
        oldest = next(iter(self._out.values()))
        return max(now + GROWTH_TICK, oldest + FIRST_WAVE_DOUBLING * math.log2((size + 1) / self.floor))

    @property
    def overdue_after(self) -> float:
        return max(OVERDUE_MIN, OVERDUE_TIMES * (self.download_seconds or 0.0))

    def counted(self, now: float) -> int:
        """Places that count against the window: all but those whose download is overdue."""
        return self.inside - self._overdue(now)[0]

    def _overdue(self, now: float) -> tuple[int, float]:
        """How many downloads out are overdue, and when the next one will be (math.inf: none out).
        ``_out`` is in the order the downloads began (places are given in time order and only
        removed), so the overdue ones come first and the scan stops at the first that is not."""
        after, overdue = self.overdue_after, 0
        for began in self._out.values():
            if began + after > now:
                return overdue, began + after
            overdue += 1
        return overdue, math.inf

    def expect(self, images: Iterable[int]) -> None:
        """These images (their ids) are in this process's hands and will ask for a place."""
        with self._lock:
            self._expected.update(images)

    def forget(self, images: Iterable[int]) -> None:
        """Those of these images that have not asked for a place will not (not claimed; their batch
        ended)."""
        with self._lock:
            before = len(self._expected)
            self._expected.difference_update(images)
            if len(self._expected) < before:
                self._fewer_in_hand()

    def wait_for_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the images in hand before their transform (placed, less
        those overdue, waiting for a place, or yet to ask) are fewer than the window's places and its
        floor again: one more batch is then taken while the ones in hand still cover the latency, and
        not one that would sit here while another process has cores idle. Whether that came."""

        def room() -> bool:
            now = time.monotonic()
            in_hand = self.counted(now) + len(self._expected) + len(self._waiting)
            return in_hand < self.size_at(now) + self.floor

        end = time.monotonic() + timeout
        with self._lock:
            self._room_waiters += 1
            try:
                while not room():
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    # Woken as images leave or are let in; the window also grows, or a download goes
                    # overdue, with no one to tell: looked at again after ROOM_LOOK at most.
                    self._in_hand_fell.wait(min(left, ROOM_LOOK))
                return True
            finally:
                self._room_waiters -= 1

    def _fewer_in_hand(self) -> None:
        """(Under the lock.) Fewer images in hand, or more places: wake wait_for_room."""
        if self._room_waiters:
            self._in_hand_fell.notify_all()

    def enter(self, until: float = math.inf, image: int | None = None) -> int | None:
        """Wait for a place, until ``until`` (time.monotonic()): its id, or None if none was given.
        The place's download begins now. ``image``: the id it was expected under, if any."""
        with self._lock:
            if image is not None:
                self._expected.discard(image)
            now = time.monotonic()
            if not self._waiting and self.counted(now) < self.size_at(now):
                return self._give()
            turn = _Turn()
            self._waiting.append(turn)
            self._start_watching()
        timeout = -1.0 if until == math.inf else max(0.0, until - time.monotonic())
        if turn.lock.acquire(timeout=timeout):
            return turn.place
        with self._lock:
            try:
                self._waiting.remove(turn)
            except ValueError:  # let in between the timeout and here: the place is ours
                return turn.place
            self._fewer_in_hand()
        return None

    def downloaded(self, place: int, seconds: float) -> None:
        """The place's download took ``seconds`` (a far host's time to first byte and body, or our own
        queue); it counts again if it was overdue."""
        with self._lock:
            self._out.pop(place, None)
            self.download_seconds = _averaged(self.download_seconds, seconds)
            self._let_in()
            self._fewer_in_hand()  # the window's size moved

    def leave(self, place: int) -> None:
        with self._lock:
            self._out.pop(place, None)
            self.inside -= 1
            self._let_in()
            self._fewer_in_hand()

    def transformed(self, seconds: float) -> None:
        with self._lock:
            self.transform_seconds = _averaged(self.transform_seconds, seconds)
            self._let_in()
            self._fewer_in_hand()  # the window's size moved

    def _give(self) -> int:
        """A place, its download out from now (under the lock)."""
        self.inside += 1
        place = next(self._ids)
        self._out[place] = time.monotonic()
        if self._waiting and self._watching_until == math.inf:
            self._watch.notify()  # the first download out to time (a later one is never due sooner)
        return place

    def _let_in(self) -> None:
        """The first waiting threads, as far as there are places (under the lock)."""
        now = time.monotonic()
        room = self.size_at(now) - self.counted(now)  # each place given counts: its download is new
        while self._waiting and room > 0:
            turn = self._waiting.popleft()
            turn.place = self._give()
            turn.lock.release()
            room -= 1

    def _start_watching(self) -> None:
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch_overdue, name="download-window", daemon=True)
            self._watcher.start()
        elif self._watching_until == math.inf:
            self._watch.notify()  # it sleeps until told: now someone waits (else it wakes when due anyway)

    def _watch_overdue(self) -> None:
        """While threads wait: at each moment a download out becomes overdue, or the window grows
        with its oldest download's age, let them in."""
        with self._lock:
            while True:
                now = time.monotonic()
                self._let_in()
                due = min(self._overdue(now)[1], self._grows_at(now))
                self._watching_until = due if self._waiting else math.inf
                self._watch.wait(None if self._watching_until == math.inf else self._watching_until - now)


def _averaged(average: float | None, sample: float) -> float:
    return sample if average is None else average + SMOOTHING * (sample - average)


class Place:
    """One image's place in a window (none: no window), taken before its download and given back at
    its transform's start, or at its end when it has none."""

    def __init__(self, window: DownloadWindow | None, image: int | None = None) -> None:
        self.window = window
        self.image = image  # the id the window expects it under (DownloadWindow.expect)
        self.place: int | None = None

    def take(self, until: float) -> bool:
        """Whether a place was given by ``until`` (always, without a window)."""
        if self.window is None:
            return True
        self.place = self.window.enter(until, self.image)
        return self.place is not None

    def give_back(self) -> None:
        if self.place is not None and self.window is not None:
            place, self.place = self.place, None
            self.window.leave(place)

    def downloaded(self, seconds: float) -> None:
        if self.place is not None and self.window is not None:
            self.window.downloaded(self.place, seconds)

    def transformed(self, seconds: float) -> None:
        if self.window is not None:
            self.window.transformed(seconds)
