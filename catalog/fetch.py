"""The only place that talks to image hosts (and webhook receivers).

Placeholder with the final interface; the hardened client (SSRF policy, pinned addresses, total
deadline, byte cap) replaces the bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from django.conf import settings


class FetchError(Exception):
    """A download that did not give an image; ``str(exc)`` is shown to the user.

    ``retryable`` says whether trying again later may succeed (timeouts, 5xx, connection errors).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_bytes: int = 25 * 1024 * 1024
    max_redirects: int = 5


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str  # after redirects


class Fetcher:
    """A client that only reaches allowed addresses. Reuse one per worker process: it pools connections."""

    def __init__(self, limits: FetchLimits, allowed_private_networks: tuple[str, ...] = ()) -> None:
        self.limits = limits
        self.allowed_private_networks = allowed_private_networks
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=limits.connect_timeout, read=limits.read_timeout),
            retries=urllib3.Retry(total=0, redirect=limits.max_redirects, raise_on_redirect=True),
        )

    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        try:
            resp = self._pool.request(
                method, url, body=body, headers=dict(headers or {}), preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"could not download {url}: {exc}", retryable=True) from exc
        return Response(resp.status, dict(resp.headers), resp.data, url)

    def fetch_image(self, url: str) -> Response:
        resp = self.request("GET", url)
        if resp.status != 200:
            host = urllib3.util.parse_url(url).host
            raise FetchError(f"HTTP {resp.status} from {host}", retryable=resp.status >= 500)
        return resp

    def close(self) -> None:
        self._pool.clear()


def fetcher_from_settings() -> Fetcher:
    limits = FetchLimits(
        connect_timeout=settings.FETCH_CONNECT_TIMEOUT,
        read_timeout=settings.FETCH_READ_TIMEOUT,
        total_timeout=settings.FETCH_TOTAL_TIMEOUT,
        max_bytes=settings.FETCH_MAX_BYTES,
        max_redirects=settings.FETCH_MAX_REDIRECTS,
    )
    return Fetcher(limits, tuple(settings.FETCH_ALLOWED_PRIVATE_NETWORKS))
