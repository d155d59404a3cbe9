"""Reading a response's body under the byte cap, the process's memory budget and the deadline.

Every receive has a socket timeout of ``min(read timeout, time left)``. A body of announced length
under the cap is read in one call (no per-chunk Python work on the hot path), any other in ``read1``
steps counted against the cap. The watchdog (catalog/fetch/deadline.py) cuts a body that drips.
"""

from __future__ import annotations

from dataclasses import dataclass

from urllib3.exceptions import HTTPError
from urllib3.response import BaseHTTPResponse

from catalog.downloadmemory import ByteBudget
from catalog.fetch.deadline import Deadline
from catalog.fetch.errors import BudgetFull, FetchError, from_urllib3, too_slow
from catalog.fetch.limits import FetchLimits
from catalog.fetch.targets import Target
from sansio.reasons import Reason
from sansio.sizes import human_size

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class BodyReader:
    """Reads a response's whole body against the byte cap and the deadline, reserving its bytes in
    ``budget`` (None: no budget, as for webhooks)."""

    limits: FetchLimits
    budget: ByteBudget | None

    def read(self, resp: BaseHTTPResponse, target: Target, deadline: Deadline) -> bytes:
        limit = self.limits.max_bytes
        header = resp.headers.get("Content-Length", "").strip()
        declared = int(header) if header.isdigit() else None
        if declared is not None and declared > limit:
            raise FetchError(
                f"download from {target.host} exceeded {human_size(limit)} limit "
                f"({human_size(declared)} announced)",
                code=Reason.TOO_LARGE,
            )
        # A body of known length, not encoded, is read in one call (the receive loop runs in C); its
        # length was checked against the cap above. Any other body is counted as it comes.
        announced = (
            declared if resp.headers.get("Content-Encoding", "").strip().lower() in ("", "identity") else None
        )
        try:
            if announced:
                self._reserve_memory(announced, target, deadline)
                self._limit_next_receive(target, deadline)
                data = resp.read(announced, decode_content=False)
            else:
                data = self._read_counted(resp, target, deadline)
        except HTTPError as exc:
            raise from_urllib3(exc, target, deadline, self.limits) from None
        except OSError as exc:  # a socket error http.client did not wrap
            if deadline.passed():
                raise too_slow(target, deadline) from None
            # In words ("connection reset by peer"), not "[Errno 104] ...".
            why = f": {exc.strerror.lower()}" if exc.strerror else ""
            raise FetchError(
                f"connection to {target.host} broke{why}", code=Reason.UNREACHABLE, retryable=True
            ) from None
        if deadline.expired:  # the watchdog's shutdown can look like a clean end of a body
            raise too_slow(target, deadline)
        if announced and len(data) != announced:
            raise FetchError(
                f"connection to {target.host} broke after {human_size(len(data))} of {human_size(announced)}",
                code=Reason.UNREACHABLE,
                retryable=True,
            )
        return data

    def _read_counted(self, resp: BaseHTTPResponse, target: Target, deadline: Deadline) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            self._limit_next_receive(target, deadline)
            chunk = resp.read1(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            self._reserve_memory(len(chunk), target, deadline)
            if total > self.limits.max_bytes:
                raise FetchError(
                    f"download from {target.host} exceeded {human_size(self.limits.max_bytes)} limit",
                    code=Reason.TOO_LARGE,
                )
            chunks.append(chunk)

    def _reserve_memory(self, n: int, target: Target, deadline: Deadline) -> None:
        """Reserve ``n`` bytes of an image body in the process's budget, waiting within the deadline."""
        if self.budget is not None and not self.budget.reserve(n, deadline.remaining):
            raise BudgetFull(
                f"no room to hold the image from {target.host} before the deadline",
                code=Reason.TIMEOUT,
                retryable=True,
            )

    def _limit_next_receive(self, target: Target, deadline: Deadline) -> None:
        """Before a receive: too slow once the deadline passed, else a timeout of min(read, time left)."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise too_slow(target, deadline)
        deadline.set_timeout(min(self.limits.read_timeout, remaining))
