"""Why a download gave no answer to use: ``FetchError`` (its text is shown to users), the kinds of it
the client tells apart, and urllib3's errors said as FetchErrors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from sansio.reasons import Reason

if TYPE_CHECKING:
    from catalog.fetch.deadline import Deadline
    from catalog.fetch.limits import FetchLimits
    from catalog.fetch.targets import Target


class FetchError(Exception):
    """A download that did not give an image; ``str(exc)`` is shown to the user.

    ``code`` says why, from the fixed vocabulary (sansio/reasons.py); ``retryable`` whether trying
    again later may succeed (timeouts, 5xx, connection errors); ``retry_after``, when the host asked
    for a wait (catalog/hostpolicy.py), not before how many seconds; ``waited``, how long the
    exchange waited for its turn at the host before it failed (not counted against its deadline);
    ``turn_key``, set when the download was not sent because its host's first wave is out
    (``HostBusy``): the host whose turn its image waits for, parked by its batch.
    """

    retry_after: float | None = None
    waited: float = 0.0  # seconds of the exchange spent waiting for a host's connection slot
    turn_key: str | None = None

    def __init__(self, message: str, *, code: Reason, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class Refused(FetchError):
    """The policy said no (scheme, host, address): never retryable."""

    def __init__(
        self, message: str, redirect_from: Target | None = None, *, code: Reason = Reason.BLOCKED
    ) -> None:
        if redirect_from is not None:
            message = f"redirect from {redirect_from.host} refused: {message}"
        super().__init__(message, code=code, retryable=False)


class BudgetFull(FetchError):
    """The process holds its whole budget of image bytes (catalog/downloadmemory.py): not the host's fault."""


class Unreachable(FetchError):
    """Nothing was sent: the next address of the same host may be tried."""


def too_slow(target: Target, deadline: Deadline) -> FetchError:
    """The error of an exchange whose total deadline passed."""
    return FetchError(
        f"download from {target.host} took longer than {in_seconds(deadline.seconds)}",
        code=Reason.TIMEOUT,
        retryable=True,
    )


def in_seconds(s: float) -> str:
    return f"{s:g} s"


def from_urllib3(exc: HTTPError, target: Target, deadline: Deadline, limits: FetchLimits) -> FetchError:
    """What urllib3's ``exc`` means for a download from ``target``."""
    host = target.host
    if deadline.passed():
        return too_slow(target, deadline)
    error: FetchError
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError in urllib3 2
        cause = exc.__context__ or exc.__cause__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else "connection failed"
        error = Unreachable(
            f"could not connect to {host}: {why.lower()}", code=Reason.UNREACHABLE, retryable=True
        )
    elif isinstance(exc, ConnectTimeoutError):
        error = Unreachable(
            f"could not connect to {host} in {in_seconds(limits.connect_timeout)}",
            code=Reason.TIMEOUT,
            retryable=True,
        )
    elif isinstance(exc, ReadTimeoutError):
        error = FetchError(
            f"{host} sent nothing for {in_seconds(limits.read_timeout)}",
            code=Reason.TIMEOUT,
            retryable=True,
        )
    elif isinstance(exc, DecodeError):
        error = FetchError(
            f"{host} sent a body its Content-Encoding does not describe", code=Reason.HTTP_ERROR
        )
    elif isinstance(exc, SSLError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "hostname" in text.lower():
            error = FetchError(f"TLS certificate of {host} could not be verified", code=Reason.UNREACHABLE)
        else:
            error = FetchError(f"TLS handshake with {host} failed", code=Reason.UNREACHABLE, retryable=True)
    elif isinstance(exc, ProtocolError):  # closed or reset before the answer was whole
        error = FetchError(
            f"{host} closed the connection before its answer was complete",
            code=Reason.UNREACHABLE,
            retryable=True,
        )
    else:  # in words, never a class name: what else urllib3 raises is a connection that broke
        error = FetchError(f"connection to {host} broke", code=Reason.UNREACHABLE, retryable=True)
    return error
