"""The only place that talks to image hosts (and webhook receivers).

Every request, and every redirect hop, goes through the same steps:

1. parse the URL (``http``/``https`` only) and read its host the way ``getaddrinfo`` would
   (``2130706433`` is 127.0.0.1);
2. resolve the name once, in a worker thread so a slow resolver is cut at the deadline, and refuse
   if *any* address it gives is forbidden by ``sansio.addresses`` (a failed lookup is a refusal,
   never a skipped check);
3. connect to the address that was checked (pools are keyed by scheme, pinned IP, port and host
   name, so a second lookup, and DNS rebinding, never happen), sending ``Host`` for the name and,
   for https, SNI and certificate verification against the name;
4. read the body with a socket timeout of ``min(read timeout, time left)`` on every receive: a body
   of announced length under the cap in one call (no per-chunk Python work on the hot path), any
   other in ``read1`` steps counted against the cap; a watchdog thread shuts the socket down at the
   total deadline, which also cuts a server that drips its status line, headers or body.

One ``Fetcher`` per worker process; it is thread-safe.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import urllib3
from django.conf import settings
from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationParseError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse, HTTPResponse

from catalog.downloadmemory import ByteBudget
from sansio.addresses import IPAddress, IPNetwork, forbidden_reason, ip_from_host, parse_networks
from sansio.reasons import Reason

_LOOPBACK = forbidden_reason(IPv4Address("127.0.0.1"))

if TYPE_CHECKING:
    from catalog.hostpolicy import HostPolicy

logger = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 429})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK = 64 * 1024
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


class FetchError(Exception):
    """A download that did not give an image; ``str(exc)`` is shown to the user.

    ``code`` says why, from the fixed vocabulary (sansio/reasons.py); ``retryable`` whether trying
    again later may succeed (timeouts, 5xx, connection errors); ``retry_after``, when the host asked
    for a wait (catalog/hostpolicy.py), not before how many seconds.
    """

    retry_after: float | None = None

    def __init__(self, message: str, *, code: Reason, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class _Refused(FetchError):
    """The policy said no (scheme, host, address): never retryable."""

    def __init__(
        self, message: str, redirect_from: _Target | None = None, *, code: Reason = Reason.BLOCKED
    ) -> None:
        if redirect_from is not None:
            message = f"redirect from {redirect_from.host} refused: {message}"
        super().__init__(message, code=code, retryable=False)


class _NoRoom(FetchError):
    """The process holds its whole budget of image bytes (catalog/downloadmemory.py): not the host's fault."""


class _Unreachable(FetchError):
    """Nothing was sent: the next address of the same host may be tried."""


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # the longest wait for any single read
    total_timeout: float = 30.0  # the whole exchange: lookup, redirects, headers and body
    max_bytes: int = 25 * 1024 * 1024
    max_redirects: int = 5
    # What fetch_image accepts ("type/*" matches a whole family). Many CDNs label images
    # application/octet-stream or not at all; the image decoder is the real judge.
    allowed_content_types: tuple[str, ...] = (
        "image/*",
        "application/octet-stream",
        "binary/octet-stream",
    )
    allow_missing_content_type: bool = True
    user_agent: str = "catalogue-images/0.1 (+image fetcher)"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    url: str  # after redirects

    @property
    def not_modified(self) -> bool:
        """A 304 to a conditional request: the resource is what it was; no body came."""
        return self.status == 304


# --- Deadline enforcement --------------------------------------------------------------------------


class _Deadline:
    """The end of one exchange, and the socket to shut down when it passes."""

    def __init__(self, at: float, seconds: float) -> None:
        self.at = at
        self.seconds = seconds  # for messages
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.expired or self.remaining() <= 0

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                _shutdown(sock)

    def set_timeout(self, seconds: float) -> None:
        with self._lock:
            if self._sock is not None and not self.expired:
                # A server that closes after its response (HTTP/1.0, "Connection: close") has had its
                # socket closed by http.client once the body is read: the next read just says so.
                with contextlib.suppress(OSError):
                    self._sock.settimeout(max(seconds, 0.001))

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)

    def detach(self) -> None:
        """Forget the socket (before its connection goes back to the pool or is closed)."""
        with self._lock:
            self._sock = None

    def finish(self) -> None:
        """The exchange is over: ``expire`` does nothing from now on."""
        with self._lock:
            self._done = True
            self._sock = None

    @property
    def done(self) -> bool:
        return self._done


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread that expires deadlines: per-read timeouts alone let a drip of one byte per read
    (in the status line, headers or chunk sizes) run for hours."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._seq), deadline))
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    _, _, deadline = heapq.heappop(self._heap)
                    deadline.expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_current = threading.local()  # .deadline: the _Deadline of the exchange this thread is making


def _attach_current(conn: HTTPConnection) -> None:
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None and conn.sock is not None:
        deadline.attach(conn.sock)


class _GuardedHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _attach_current(self)
        return super().getresponse()


class _GuardedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _attach_current(self)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


# --- Targets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    request_uri: str
    host_header: str


@dataclass(frozen=True)
class _Call:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    follow: bool  # redirects
    accept: Callable[[BaseHTTPResponse, _Target], None] | None  # judges the final response's head


@dataclass
class _Trail:
    """What one exchange went through, for its log line."""

    url: str
    host: str = "-"
    first_host: str = "-"
    via: str = "-"
    redirects: int = 0
    received: int = 0
    origin: str = ""  # the host policy's key of the host talked to last
    slot: contextlib.ExitStack | None = None  # its connection slot, while held

    def __post_init__(self) -> None:
        self.host = self.first_host = _host_for_log(self.url)

    def leave(self) -> None:
        if self.slot is not None:
            self.slot.close()
            self.slot = None


def _host_for_log(url: str) -> str:
    try:
        return urllib3.util.parse_url(url).host or url[:100]
    except (LocationParseError, ValueError):
        return url[:100]


def _parse(url: str, redirect_from: _Target | None = None) -> _Target:
    try:
        parsed = urllib3.util.parse_url(url.strip())
    except (LocationParseError, ValueError):
        raise _Refused(f"not a valid URL: {url[:200]}", redirect_from, code=Reason.BAD_URL) from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS:
        message = f"only http and https URLs can be fetched, not {scheme or 'this'}: {url[:200]}"
        raise _Refused(message, redirect_from, code=Reason.BAD_URL)
    host = (parsed.host or "").lower()
    if not host or any(c.isspace() or ord(c) < 0x20 for c in host):
        raise _Refused(f"URL has no valid host: {url[:200]}", redirect_from, code=Reason.BAD_URL)
    port = parsed.port or _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise _Refused(f"URL has an invalid port: {url[:200]}", redirect_from, code=Reason.BAD_URL)
    bare = host[1:-1] if host.startswith("[") else host
    shown = f"[{bare}]" if ":" in bare else bare
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    return _Target(url, scheme, bare, port, parsed.request_uri, host_header)


def _hinted(reason: str | None) -> str | None:
    """A local image server is a setting away: say which (only for loopback, where it is ours)."""
    if reason is None or _LOOPBACK is None or not reason.endswith(_LOOPBACK):  # also "a mapped form of …"
        return reason
    return f"{reason} (allow it with FETCH_ALLOWED_PRIVATE_NETWORKS)"


def _size(n: int) -> str:
    mib = 1024 * 1024
    if n >= mib:
        return f"{n // mib} MB" if n % mib == 0 else f"{n / mib:.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB" if n % 1024 == 0 else f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _too_slow(target: _Target, deadline: _Deadline) -> FetchError:
    return FetchError(
        f"download from {target.host} took longer than {_seconds(deadline.seconds)}",
        code=Reason.TIMEOUT,
        retryable=True,
    )


def _seconds(s: float) -> str:
    return f"{s:g} s"


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


# --- The client -------------------------------------------------------------------------------------


class Fetcher:
    """A client that only reaches allowed addresses. Reuse one per worker process: it pools connections."""

    def __init__(
        self,
        limits: FetchLimits,
        allowed_private_networks: tuple[str, ...] = (),
        *,
        exempt_prefixes: tuple[str, ...] = (),
        ca_certs: str | None = None,
        pool_size: int = 8,
        max_pools: int = 64,
        hosts: HostPolicy | None = None,
        dns_ttl: float = 0.0,
        memory: ByteBudget | None = None,
    ) -> None:
        self.limits = limits
        self.memory = memory  # image bodies held by this process; their threads give them back
        self.hosts = hosts  # breaker, connection cap and Retry-After per host; None: no policy
        self._dns_ttl = dns_ttl  # how long a lookup's answer is reused (it is checked at every use)
        self._dns_cache: dict[tuple[str, int], tuple[float, tuple[IPAddress, ...]]] = {}
        self.allowed_private_networks = allowed_private_networks
        self._allowed: tuple[IPNetwork, ...] = parse_networks(allowed_private_networks)
        # URLs under these prefixes (scheme://ip:port/path/) skip the address policy: the service's
        # own sample images in development (settings.SAMPLE_IMAGES), that origin and path only.
        self.exempt_prefixes = exempt_prefixes
        self._pools = urllib3.PoolManager(
            num_pools=max_pools,
            maxsize=pool_size,
            block=False,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )
        self._pools.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        self._watchdog = _Watchdog()
        self._resolver_lock = threading.Lock()
        self._resolver_pool: ThreadPoolExecutor | None = None

    # --- public API -------------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Raise FetchError unless ``url`` is http(s) and its host resolves only to allowed addresses.

        For validating URLs given now and fetched later (webhooks): the fetch checks again.
        """
        deadline = _Deadline(time.monotonic() + self.limits.total_timeout, self.limits.total_timeout)
        target = _parse(url)
        self._addresses(target, deadline)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
        total_timeout: float | None = None,
    ) -> Response:
        """Any status comes back as a Response; FetchError for refusals, timeouts and broken connections.

        Redirects are returned as they are unless ``follow_redirects`` (a webhook never follows one).
        ``total_timeout`` overrides the limits' deadline for this call (e.g. a webhook's own timeout).
        """
        return self._exchange(
            method,
            url,
            body=body,
            headers=headers,
            follow=follow_redirects,
            accept=None,
            total_timeout=total_timeout,
        )

    def fetch_image(
        self, url: str, *, etag: str = "", last_modified: str = "", total_timeout: float | None = None
    ) -> Response:
        """GET an image, following redirects; FetchError unless it answers 200 with an image-like type.

        ``total_timeout`` shortens the deadline (what is left of an image's budget over its attempts).

        Given the ``ETag`` or ``Last-Modified`` the URL sent last time, the request is conditional
        (``If-None-Match``, ``If-Modified-Since``; the host judges by the first if both) and a ``304``
        also comes back: a Response whose ``not_modified`` is true, with no body.
        """
        headers = {"Accept": "image/*,*/*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        accept = self._check_image_or_unchanged if etag or last_modified else self._check_image
        return self._exchange(
            "GET", url, body=None, headers=headers, follow=True, accept=accept, total_timeout=total_timeout
        )

    def close(self) -> None:
        self._pools.clear()
        with self._resolver_lock:
            if self._resolver_pool is not None:
                self._resolver_pool.shutdown(wait=False, cancel_futures=True)
                self._resolver_pool = None

    # --- one exchange, redirects included ------------------------------------------------------------

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        follow: bool,
        accept: Callable[[BaseHTTPResponse, _Target], None] | None,
        total_timeout: float | None = None,
    ) -> Response:
        """One logged exchange under one total deadline."""
        started = time.monotonic()
        total = self.limits.total_timeout if total_timeout is None else total_timeout
        deadline = _Deadline(started + total, total)
        self._watchdog.watch(deadline)
        trail = _Trail(url)
        outcome = "-"
        call = _Call(
            method, url, body, {"User-Agent": self.limits.user_agent, **(headers or {})}, follow, accept
        )
        try:
            response = self._follow(call, deadline, trail)
            outcome = str(response.status)
            return response
        except FetchError as exc:
            outcome = str(exc)
            if self.hosts is not None and exc.retry_after is None and trail.origin:
                exc.retry_after = self.hosts.retry_after(trail.origin)
            raise
        finally:
            trail.leave()
            deadline.finish()
            logger.info(
                "fetch %s %s via %s: %s, %d bytes, %d ms, %d redirects",
                method,
                trail.host,
                trail.via,
                outcome,
                trail.received,
                int((time.monotonic() - started) * 1000),
                trail.redirects,
            )

    def _follow(self, call: _Call, deadline: _Deadline, trail: _Trail) -> Response:
        method, body, send_headers, accept = call.method, call.body, call.headers, call.accept
        target = _parse(call.url)
        previous: _Target | None = None
        while True:
            trail.host = target.host
            self._enter_host(target, deadline, trail)
            try:
                resp, ip = self._send(method, target, body, send_headers, deadline)
            except _Refused as exc:
                if previous is None:
                    raise
                raise _Refused(str(exc), redirect_from=previous, code=exc.code) from None
            trail.via = str(ip)
            if self.hosts is not None:
                self.hosts.answered(
                    trail.origin, target.host_header, resp.status, resp.headers.get("Retry-After")
                )
            location = resp.headers.get("Location")
            if not (call.follow and resp.status in _REDIRECTS and location):
                break
            self._discard(resp, deadline)
            if trail.redirects >= self.limits.max_redirects:
                raise FetchError(
                    f"more than {self.limits.max_redirects} redirects from {trail.first_host}",
                    code=Reason.TOO_MANY_REDIRECTS,
                )
            trail.redirects += 1
            previous, target = target, _parse(urljoin(target.url, location.strip()), redirect_from=target)
            if (target.scheme, target.host, target.port) != (previous.scheme, previous.host, previous.port):
                send_headers = {k: v for k, v in send_headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = "GET", None
        try:
            if accept is not None:
                accept(resp, target)
            _current.budget = self.memory if accept is not None else None  # images only, not webhooks
            data = b"" if resp.status == 304 else self._read_body(resp, target, deadline)  # 304: no body
        except FetchError as exc:
            self._discard(resp, deadline)
            if deadline.passed() and not isinstance(exc, _NoRoom):  # the host answered, but its body
                exc.retryable = False  # outlasted the deadline: it would again
            raise
        except BaseException:
            self._discard(resp, deadline)
            raise
        trail.received = len(data)
        self._release(resp, deadline)
        return Response(resp.status, HTTPHeaderDict(resp.headers), data, target.url)

    def _enter_host(self, target: _Target, deadline: _Deadline, trail: _Trail) -> None:
        """Before each hop: the host policy's breaker and Retry-After, then one of its connection slots
        (the previous hop's is given back first: a redirect loop on one host needs only one)."""
        if self.hosts is None:
            return
        trail.leave()
        trail.origin = origin = _origin(target)
        slot = contextlib.ExitStack()
        slot.enter_context(self.hosts.admitted(origin, target.host_header, deadline.remaining))
        trail.slot = slot

    def _check_image_or_unchanged(self, resp: BaseHTTPResponse, target: _Target) -> None:
        if resp.status != 304:
            self._check_image(resp, target)

    def _check_image(self, resp: BaseHTTPResponse, target: _Target) -> None:
        if resp.status != 200:
            retryable = resp.status >= 500 or resp.status in _RETRYABLE_STATUS
            code = Reason.NOT_FOUND if resp.status in (404, 410) else Reason.HTTP_ERROR
            raise FetchError(f"HTTP {resp.status} from {target.host}", code=code, retryable=retryable)
        media_type = _media_type(resp.headers.get("Content-Type"))
        if not media_type:
            if self.limits.allow_missing_content_type:
                return
            raise FetchError(f"{target.host} sent no Content-Type, not an image", code=Reason.NOT_AN_IMAGE)
        for allowed in self.limits.allowed_content_types:
            if media_type == allowed or (allowed.endswith("/*") and media_type.startswith(allowed[:-1])):
                return
        raise FetchError(f"{target.host} sent {media_type}, not an image", code=Reason.NOT_AN_IMAGE)

    # --- addresses ---------------------------------------------------------------------------------

    def _addresses(self, target: _Target, deadline: _Deadline) -> tuple[IPAddress, ...]:
        """Every address ``target.host`` stands for, all allowed; or FetchError naming one that is not."""
        try:
            literal = ip_from_host(target.host)
        except ValueError:
            raise _Refused(f"URL has no valid host: {target.url[:200]}", code=Reason.BAD_URL) from None
        if literal is not None:
            reason = _hinted(forbidden_reason(literal, self._allowed))
            if reason is not None and not self._exempt(target):
                plain = literal.version == 6 or str(literal) == target.host
                shown = target.host if plain else f"{target.host} means {literal}, which"
                raise _Refused(f"{shown} is {reason}")
            return (literal,)
        addresses = self._resolve_cached(target, deadline)
        for ip in addresses:  # checked at every use, cached or not
            reason = _hinted(forbidden_reason(ip, self._allowed))
            if reason is not None:
                raise _Refused(f"{target.host} resolves to {ip}, {reason}")
        return addresses

    def _exempt(self, target: _Target) -> bool:
        where = f"{target.scheme}://{target.host_header}{target.request_uri}"  # dot segments removed
        return any(where.startswith(prefix) for prefix in self.exempt_prefixes)

    def _resolver(self) -> ThreadPoolExecutor:
        with self._resolver_lock:
            if self._resolver_pool is None:
                self._resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fetch-dns")
            return self._resolver_pool

    def _resolve_cached(self, target: _Target, deadline: _Deadline) -> tuple[IPAddress, ...]:
        """The lookup's answer, reused for ``dns_ttl`` seconds (getaddrinfo does not give the record's
        TTL, so a short fixed one stands in); failures are never cached."""
        if self._dns_ttl <= 0:
            return self._resolve(target, deadline)
        key = (target.host, target.port)
        now = time.monotonic()
        cached = self._dns_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        addresses = self._resolve(target, deadline)
        if len(self._dns_cache) > 4096:  # many hosts: start again rather than grow without end
            self._dns_cache.clear()
        self._dns_cache[key] = (now + self._dns_ttl, addresses)
        return addresses

    def _resolve(self, target: _Target, deadline: _Deadline) -> tuple[IPAddress, ...]:
        wait = max(0.0, min(self.limits.connect_timeout, deadline.remaining()))
        future = self._resolver().submit(socket.getaddrinfo, target.host, target.port, 0, socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=wait)
        except FutureTimeout:
            future.cancel()
            raise FetchError(
                f"could not resolve {target.host} in {_seconds(wait)}", code=Reason.TIMEOUT, retryable=True
            ) from None
        except socket.gaierror as exc:
            permanent = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
            raise FetchError(
                f"could not resolve {target.host}", code=Reason.UNREACHABLE, retryable=not permanent
            ) from None
        except (UnicodeError, ValueError):
            raise _Refused(f"URL has no valid host: {target.url[:200]}", code=Reason.BAD_URL) from None
        except OSError as exc:
            raise FetchError(
                f"could not resolve {target.host}: {exc}", code=Reason.UNREACHABLE, retryable=True
            ) from None
        addresses: list[IPAddress] = []
        for info in infos:
            raw = str(info[4][0])
            try:
                ip = ip_from_host(raw)
            except ValueError:
                ip = None
            if ip is None:  # never skip the check: an address we cannot read is refused
                raise _Refused(f"{target.host} resolves to {raw!r}, which is not an IP address")
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError(f"could not resolve {target.host}", code=Reason.UNREACHABLE)
        return tuple(addresses)

    # --- the wire -----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        target: _Target,
        body: bytes | None,
        headers: Mapping[str, str],
        deadline: _Deadline,
    ) -> tuple[BaseHTTPResponse, IPAddress]:
        addresses = self._addresses(target, deadline)
        send = {k: v for k, v in headers.items() if k.lower() != "host"}
        send["Host"] = target.host_header
        last_error: _Unreachable | None = None
        for ip in addresses:  # the next checked address only if this one could not be reached
            if deadline.passed():
                break
            try:
                return self._send_to(ip, method, target, body=body, headers=send, deadline=deadline), ip
            except _Unreachable as exc:
                last_error = exc
        if last_error is not None and not deadline.passed():
            raise last_error
        raise _too_slow(target, deadline)

    def _send_to(
        self,
        ip: IPAddress,
        method: str,
        target: _Target,
        *,
        body: bytes | None,
        headers: Mapping[str, str],
        deadline: _Deadline,
    ) -> BaseHTTPResponse:
        pool_kwargs: dict[str, object] = {"server_hostname": target.host}
        if target.scheme == "https":
            pool_kwargs["assert_hostname"] = target.host
        pool = self._pools.connection_from_host(str(ip), target.port, target.scheme, pool_kwargs)
        remaining = deadline.remaining()
        timeout = urllib3.Timeout(
            connect=max(0.001, min(self.limits.connect_timeout, remaining)),
            read=max(0.001, min(self.limits.read_timeout, remaining)),
        )
        _current.deadline = deadline
        try:
            resp = pool.urlopen(
                method,
                target.request_uri,
                body=body,
                headers=dict(headers),
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=timeout,
                preload_content=False,
                release_conn=False,
            )
        except HTTPError as exc:
            self._note_no_answer(exc, target, deadline)
            raise self._translate(exc, target, deadline) from None
        finally:
            _current.deadline = None
        if deadline.passed():  # the watchdog cut the head short, and http.client took that for its end
            self._discard(resp, deadline)
            self._note_no_answer(None, target, deadline)
            raise _too_slow(target, deadline)
        return resp

    def _note_no_answer(self, exc: HTTPError | None, target: _Target, deadline: _Deadline) -> None:
        """Tell the host policy of a connection that timed out or was refused before any answer."""
        if self.hosts is None:
            return
        timeout = deadline.passed() or isinstance(exc, (ConnectTimeoutError, ReadTimeoutError))
        refused = isinstance(exc, NewConnectionError)  # a subclass of ConnectTimeoutError in urllib3 2
        if refused and not deadline.passed():
            self.hosts.failed(_origin(target), target.host_header, timeout=False)
        elif timeout:
            self.hosts.failed(_origin(target), target.host_header, timeout=True)

    def _read_body(self, resp: BaseHTTPResponse, target: _Target, deadline: _Deadline) -> bytes:
        limit = self.limits.max_bytes
        header = resp.headers.get("Content-Length", "").strip()
        declared = int(header) if header.isdigit() else None
        if declared is not None and declared > limit:
            raise FetchError(
                f"download from {target.host} exceeded {_size(limit)} limit ({_size(declared)} announced)",
                code=Reason.TOO_LARGE,
            )
        # A body of known length, not encoded, is read in one call (the receive loop runs in C); its
        # length was checked against the cap above. Any other body is counted as it comes.
        announced = (
            declared if resp.headers.get("Content-Encoding", "").strip().lower() in ("", "identity") else None
        )
        try:
            if announced:
                self._hold(announced, target, deadline)
                self._arm(target, deadline)
                data = resp.read(announced, decode_content=False)
            else:
                data = self._read_counted(resp, target, deadline)
        except HTTPError as exc:
            raise self._translate(exc, target, deadline) from None
        except OSError as exc:  # a socket error http.client did not wrap
            if deadline.passed():
                raise _too_slow(target, deadline) from None
            raise FetchError(
                f"connection to {target.host} broke: {exc}", code=Reason.UNREACHABLE, retryable=True
            ) from None
        if deadline.expired:  # the watchdog's shutdown can look like a clean end of a body
            raise _too_slow(target, deadline)
        if announced and len(data) != announced:
            raise FetchError(
                f"connection to {target.host} broke after {_size(len(data))} of {_size(announced)}",
                code=Reason.UNREACHABLE,
                retryable=True,
            )
        return data

    def _read_counted(self, resp: BaseHTTPResponse, target: _Target, deadline: _Deadline) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            self._arm(target, deadline)
            chunk = resp.read1(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            self._hold(len(chunk), target, deadline)
            if total > self.limits.max_bytes:
                raise FetchError(
                    f"download from {target.host} exceeded {_size(self.limits.max_bytes)} limit",
                    code=Reason.TOO_LARGE,
                )
            chunks.append(chunk)

    def _hold(self, n: int, target: _Target, deadline: _Deadline) -> None:
        """Reserve ``n`` bytes of an image body in the process's budget, waiting within the deadline."""
        budget: ByteBudget | None = getattr(_current, "budget", None)
        if budget is not None and not budget.reserve(n, deadline.remaining):
            raise _NoRoom(
                f"no room to hold the image from {target.host} before the deadline",
                code=Reason.TIMEOUT,
                retryable=True,
            )

    def _arm(self, target: _Target, deadline: _Deadline) -> None:
        """Before a receive: too slow once the deadline passed, else a timeout of min(read, time left)."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _too_slow(target, deadline)
        deadline.set_timeout(min(self.limits.read_timeout, remaining))

    def _translate(self, exc: HTTPError, target: _Target, deadline: _Deadline) -> FetchError:
        host = target.host
        if deadline.passed():
            return _too_slow(target, deadline)
        error: FetchError
        if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError in urllib3 2
            cause = exc.__context__ or exc.__cause__
            why = cause.strerror if isinstance(cause, OSError) and cause.strerror else "connection failed"
            error = _Unreachable(
                f"could not connect to {host}: {why.lower()}", code=Reason.UNREACHABLE, retryable=True
            )
        elif isinstance(exc, ConnectTimeoutError):
            error = _Unreachable(
                f"could not connect to {host} in {_seconds(self.limits.connect_timeout)}",
                code=Reason.TIMEOUT,
                retryable=True,
            )
        elif isinstance(exc, ReadTimeoutError):
            error = FetchError(
                f"{host} sent nothing for {_seconds(self.limits.read_timeout)}",
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
                error = FetchError(
                    f"TLS certificate of {host} could not be verified", code=Reason.UNREACHABLE
                )
            else:
                error = FetchError(
                    f"TLS handshake with {host} failed", code=Reason.UNREACHABLE, retryable=True
                )
        else:
            error = FetchError(
                f"connection to {host} broke: {type(exc).__name__}", code=Reason.UNREACHABLE, retryable=True
            )
        return error

    def _release(self, resp: BaseHTTPResponse, deadline: _Deadline) -> None:
        deadline.detach()  # first, so the watchdog cannot touch a socket the pool hands to someone else
        resp.release_conn()

    def _discard(self, resp: BaseHTTPResponse, deadline: _Deadline) -> None:
        """Drop a response we will not read: its connection is closed, not reused."""
        deadline.detach()
        resp.close()
        resp.release_conn()


def _origin(target: _Target) -> str:
    return f"{target.scheme}://{target.host}:{target.port}"


def fetcher_from_settings() -> Fetcher:
    limits = FetchLimits(
        connect_timeout=settings.FETCH_CONNECT_TIMEOUT,
        read_timeout=settings.FETCH_READ_TIMEOUT,
        total_timeout=settings.FETCH_TOTAL_TIMEOUT,
        max_bytes=settings.FETCH_MAX_BYTES,
        max_redirects=settings.FETCH_MAX_REDIRECTS,
    )
    # Enough pooled connections per host for a batch's threads, so none is opened only to be dropped.
    pool_size = max(8, int(getattr(settings, "IMAGE_DOWNLOADS", 8)))
    samples = (settings.SAMPLE_IMAGES_URL,) if settings.SAMPLE_IMAGES else ()
    # Imported here: hostpolicy's errors are FetchErrors, so it imports this module.
    from catalog.hostpolicy import host_policy_from_settings  # noqa: PLC0415

    return Fetcher(
        limits,
        tuple(settings.FETCH_ALLOWED_PRIVATE_NETWORKS),
        exempt_prefixes=samples,
        pool_size=pool_size,
        hosts=host_policy_from_settings(),
        dns_ttl=settings.FETCH_DNS_TTL,
        # The machine's budget shared evenly by its pool processes.
        memory=ByteBudget(max(1, settings.IMAGE_DOWNLOAD_MEMORY // settings.CELERY_WORKER_CONCURRENCY)),
    )
