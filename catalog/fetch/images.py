"""What ``fetch_image`` accepts as the last hop's answer: a 200 of an image-like content type (the
image decoder is the real judge), or also a 304 when the request was conditional."""

from __future__ import annotations

from collections.abc import Callable

from urllib3.response import BaseHTTPResponse

from catalog.fetch.errors import FetchError
from catalog.fetch.limits import FetchLimits
from catalog.fetch.targets import Target
from sansio.reasons import Reason

_RETRYABLE_STATUS = frozenset({408, 429})


def image_check(limits: FetchLimits, *, conditional: bool) -> Callable[[BaseHTTPResponse, Target], None]:
    """A judge of a response's head that raises FetchError unless it brings an image (or, when
    ``conditional``, says the image is unchanged)."""

    def check(resp: BaseHTTPResponse, target: Target) -> None:
        if not (conditional and resp.status == 304):
            _check_image(resp, target, limits)

    return check


def _check_image(resp: BaseHTTPResponse, target: Target, limits: FetchLimits) -> None:
    if resp.status != 200:
        retryable = resp.status >= 500 or resp.status in _RETRYABLE_STATUS
        code = Reason.NOT_FOUND if resp.status in (404, 410) else Reason.HTTP_ERROR
        raise FetchError(f"HTTP {resp.status} from {target.host}", code=code, retryable=retryable)
    media_type = _media_type(resp.headers.get("Content-Type"))
    if not media_type:
        if limits.allow_missing_content_type:
            return
        raise FetchError(f"{target.host} sent no Content-Type, not an image", code=Reason.NOT_AN_IMAGE)
    for allowed in limits.allowed_content_types:
        if media_type == allowed or (allowed.endswith("/*") and media_type.startswith(allowed[:-1])):
            return
    raise FetchError(f"{target.host} sent {media_type}, not an image", code=Reason.NOT_AN_IMAGE)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()
