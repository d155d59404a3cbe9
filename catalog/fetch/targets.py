"""Where a request goes: a URL read into a ``Target`` (http and https only, the host read the way
``getaddrinfo`` would), and where a redirect sends it next, with what."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

import urllib3
from urllib3.exceptions import LocationParseError

from catalog.fetch.errors import Refused
from sansio.reasons import Reason

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


@dataclass(frozen=True)
class Target:
    """One hop's URL, read: what to look up, where to connect, and what to send as ``Host``."""

    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    request_uri: str
    host_header: str

    @property
    def origin(self) -> str:
        """The host policy's key for this host (catalog/hostpolicy.py)."""
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_target(url: str, redirect_from: Target | None = None) -> Target:
    """``url`` as a Target; Refused if it is not an http(s) URL with a valid host and port."""
    try:
        parsed = urllib3.util.parse_url(url.strip())
    except (LocationParseError, ValueError):
        raise Refused(f"not a valid URL: {url[:200]}", redirect_from, code=Reason.BAD_URL) from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS:
        message = f"only http and https URLs can be fetched, not {scheme or 'this'}: {url[:200]}"
        raise Refused(message, redirect_from, code=Reason.BAD_URL)
    host = (parsed.host or "").lower()
    if not host or any(c.isspace() or ord(c) < 0x20 for c in host):
        raise Refused(f"URL has no valid host: {url[:200]}", redirect_from, code=Reason.BAD_URL)
    port = parsed.port or _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise Refused(f"URL has an invalid port: {url[:200]}", redirect_from, code=Reason.BAD_URL)
    bare = host[1:-1] if host.startswith("[") else host
    shown = f"[{bare}]" if ":" in bare else bare
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    return Target(url, scheme, bare, port, parsed.request_uri, host_header)


def host_for_log(url: str) -> str:
    """The host of ``url`` for a log line, or the start of the URL when it has none that can be read."""
    try:
        return urllib3.util.parse_url(url).host or url[:100]
    except (LocationParseError, ValueError):
        return url[:100]


def redirect_target(previous: Target, location: str) -> Target:
    """Where a ``Location`` from ``previous`` sends: read and refused like any URL, naming ``previous``."""
    return parse_target(urljoin(previous.url, location.strip()), redirect_from=previous)


def redirected_headers(headers: dict[str, str], previous: Target, target: Target) -> dict[str, str]:
    """The headers for the next hop: credentials go no further than the host, scheme and port they
    were sent to."""
    if (target.scheme, target.host, target.port) == (previous.scheme, previous.host, previous.port):
        return headers
    return {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}


def redirected_method(status: int, method: str, body: bytes | None) -> tuple[str, bytes | None]:
    """The method and body for the next hop: a 303, or a 301 or 302 to a POST, becomes a GET."""
    if status == 303 or (status in (301, 302) and method == "POST"):
        return "GET", None
    return method, body
