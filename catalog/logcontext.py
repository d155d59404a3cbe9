"""Carries the current request_id into every log line, in web requests and in tasks alike."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")
# The ids a view worked under during one HTTP call, so the call's own log line can name them.
_ids_seen: ContextVar[list[str] | None] = ContextVar("_ids_seen", default=None)

http_logger = logging.getLogger("catalog.http")
# Polled by load balancers and Prometheus, or static: a line each would drown the API calls.
_UNLOGGED_PREFIXES = ("/healthz", "/metrics", "/static/")


@contextlib.contextmanager
def request_id_context(request_id: object) -> Iterator[None]:
    token = current_request_id.set(str(request_id))
    seen = _ids_seen.get()
    if seen is not None and str(request_id) != "-":
        seen.append(str(request_id))
    try:
        yield
    finally:
        current_request_id.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class RequestLogContextMiddleware:
    """Clears the context per HTTP request; views set it once they know which request they serve.

    Then logs the call with its status, duration and the request id it was about.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        seen: list[str] = []
        token = _ids_seen.set(seen)
        try:
            with request_id_context("-"):
                response = self.get_response(request)
        finally:
            _ids_seen.reset(token)
        if not request.path.startswith(_UNLOGGED_PREFIXES):
            ms = round((time.perf_counter() - started) * 1000)
            http_logger.info(
                "%s %s %s in %d ms",
                request.method,
                request.path,
                response.status_code,
                ms,
                extra={"request_id": _request_id_of(request, seen), "duration_ms": ms},
            )
        return response


def _request_id_of(request: HttpRequest, seen: list[str]) -> str:
    """The id the view worked under, else the one the URL names (status polls, request pages)."""
    if seen:
        return seen[-1]
    match = request.resolver_match
    named = match.kwargs.get("request_id") if match else None
    try:  # only a well-formed id goes into the log: the query string is the client's to write
        return str(uuid.UUID(str(named or request.GET.get("request_id", ""))))
    except ValueError:
        return "-"
