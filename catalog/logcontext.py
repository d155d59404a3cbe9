"""Carries the current request_id into every log line, in web requests and in tasks alike."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")


@contextlib.contextmanager
def request_id_context(request_id: object) -> Iterator[None]:
    token = current_request_id.set(str(request_id))
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
    """Clears the context per HTTP request; views set it once they know which request they serve."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_id_context("-"):
            return self.get_response(request)
