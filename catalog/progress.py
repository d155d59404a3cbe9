"""The command line's progress display: a bar redrawn in place on a terminal, plain lines in a log."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable

from django.core.management.base import OutputWrapper

from catalog.client import Status

PLAIN_EVERY, PLAIN_HEARTBEAT = 5.0, 30.0  # a log gets a line on change at most this often, or when quiet


class ProgressReport:
    """A bar redrawn in place on a terminal; in a log, a plain line now and then; nothing at -v 0."""

    def __init__(
        self,
        out: OutputWrapper,
        *,
        tty: bool,
        quiet: bool = False,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out, self._tty, self._quiet, self._timer = out, tty, quiet, timer
        self.started = timer()
        self._first: tuple[float, int] | None = None  # when and where polling began: the rate for the eta
        self._drawn = 0
        self._last_plain = -math.inf
        self._last_key: tuple[object, ...] = ()

    def update(self, status: Status, note: str = "") -> None:
        now = self._timer()
        if self._first is None:
            self._first = (now, status.settled)
        if self._quiet:
            return
        elapsed, eta = now - self.started, self._eta(status, now)
        if self._tty:
            columns = shutil.get_terminal_size().columns
            bar_width = max(10, min(30, columns - 60))
            line = progress_line(status, elapsed, eta, bar_width=bar_width, note=note)[: columns - 1]
            self._out.write("\r" + line.ljust(self._drawn), ending="")
            self._drawn = len(line)
            self._out.flush()
            return
        key = (status.settled, status.state, note)
        since = now - self._last_plain
        if status.completed or (key != self._last_key and since >= PLAIN_EVERY) or since >= PLAIN_HEARTBEAT:
            self._out.write(progress_line(status, elapsed, eta, bar_width=0, note=note))
            self._out.flush()
            self._last_plain, self._last_key = now, key

    def close(self) -> None:
        if self._drawn:  # leave the bar on screen and move past it
            self._out.write("")
            self._drawn = 0

    def _eta(self, status: Status, now: float) -> float | None:
        assert self._first is not None
        since, settled_then = self._first
        progressed = status.settled - settled_then
        if status.completed or progressed <= 0 or now - since < 1:
            return None
        return (status.images - status.settled) * (now - since) / progressed


def progress_line(
    status: Status, elapsed: float, eta: float | None, *, bar_width: int, note: str = ""
) -> str:
    """`[#####-----]  52%  104/200 images  3 failed  00:12  eta 00:11`; no bar when `bar_width` is 0."""
    parts = [f"{status.percent:3d}%", f"{status.settled}/{status.images} images"]
    if status.failed:
        parts.append(f"{status.failed} failed")
    if status.reused:
        parts.append(f"{status.reused} reused")
    parts.append(clock(elapsed))
    if eta is not None:
        parts.append(f"eta {clock(eta)}")
    if status.state == "pending":
        parts.append("waiting for a worker")
    if note:
        parts.append(note)
    line = "  ".join(parts)
    if not bar_width:
        return line
    filled = min(bar_width, status.percent * bar_width // 100)
    return f"[{'#' * filled}{'-' * (bar_width - filled)}] {line}"


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
