"""The ``Fetcher``: one exchange with a host, redirects included, under one total deadline, logged
in one line."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from urllib3 import HTTPHeaderDict
from urllib3.response import BaseHTTPResponse

from catalog.downloadmemory import ByteBudget
from catalog.fetch.body import BodyReader
from catalog.fetch.deadline import Deadline, Watchdog
from catalog.fetch.errors import BudgetFull, FetchError, Refused
from catalog.fetch.images import image_check
from catalog.fetch.limits import FetchLimits
from catalog.fetch.resolver import AddressResolver
from catalog.fetch.sender import Sender, discard, release
from catalog.fetch.targets import (
    REDIRECT_STATUSES,
    Target,
    host_for_log,
    parse_target,
    redirect_target,
    redirected_headers,
    redirected_method,
)
from sansio.addresses import parse_networks
from sansio.reasons import Reason

if TYPE_CHECKING:
    from catalog.hostpolicy import HostPolicy

# The package's name, as the log lines have always been named, whichever module of it writes them.
logger = logging.getLogger("catalog.fetch")


# When the waits for a host's connection slot of this context's downloads end (time.monotonic()),
# if sooner than the limits' slot_wait: a batch's time limit (catalog/services/batches.py), past
# which a download would be waiting for a batch that already gave it back.
_slot_waits_end: ContextVar[float | None] = ContextVar("slot_waits_end", default=None)


@contextlib.contextmanager
def slot_waits_end(at: float) -> Iterator[None]:
    """Within it (and in contexts copied from it), waits for a host's connection end by ``at``."""
    token = _slot_waits_end.set(at)
    try:
        yield
    finally:
        _slot_waits_end.reset(token)


# Within a batch of images (catalog/services/batches.py), which parks an image whose host's first wave
# is out (HostBusy, catalog/hostpolicy.py) and runs it again at its turn. Elsewhere (webhooks) a
# download waits for its host as before.
_parks_images: ContextVar[bool] = ContextVar("parks_images", default=False)


@contextlib.contextmanager
def parking_images() -> Iterator[None]:
    """Within it (and in contexts copied from it), a download to a host whose first wave is out raises
    HostBusy (its ``turn_key`` names the host) instead of joining the wave."""
    token = _parks_images.set(True)
    try:
        yield
    finally:
        _parks_images.reset(token)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    url: str  # after redirects
    waited: float = 0.0  # seconds spent waiting for the hosts' connection slots (not on the deadline)

    @property
    def not_modified(self) -> bool:
        """A 304 to a conditional request: the resource is what it was; no body came."""
        return self.status == 304


@dataclass(frozen=True)
class _Request:
    """What the caller asked for: the first hop's request, and how to treat the last hop's answer."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    follow: bool  # redirects
    accept: Callable[[BaseHTTPResponse, Target], None] | None  # judges the final response's head


@dataclass
class _ExchangeRecord:
    """What one exchange went through, for its log line, and the host-policy slot it holds."""

    url: str
    host: str = "-"  # the host of the current (in the end, the last) hop
    first_host: str = "-"
    via: str = "-"  # the address the last answer came from
    redirects: int = 0
    received: int = 0  # bytes of the final body
    origin: str = ""  # the host policy's key of the host talked to last
    slot: contextlib.ExitStack | None = None  # its connection slot, while held

    def __post_init__(self) -> None:
        self.host = self.first_host = host_for_log(self.url)

    def release_slot(self) -> None:
        if self.slot is not None:
            self.slot.close()
            self.slot = None


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
        self.allowed_private_networks = allowed_private_networks
        # URLs under these prefixes skip the address policy (the service's own sample images).
        self.exempt_prefixes = exempt_prefixes
        self._resolver = AddressResolver(
            parse_networks(allowed_private_networks),
            exempt_prefixes=exempt_prefixes,
            dns_ttl=dns_ttl,
            connect_timeout=limits.connect_timeout,
        )
        self._sender = Sender(
            limits, self._resolver, hosts, ca_certs=ca_certs, pool_size=pool_size, max_pools=max_pools
        )
        self._watchdog = Watchdog()

    # --- public API -------------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Raise FetchError unless ``url`` is http(s) and its host resolves only to allowed addresses.

        For validating URLs given now and fetched later (webhooks): the fetch checks again.
        """
        deadline = Deadline(time.monotonic() + self.limits.total_timeout, self.limits.total_timeout)
        target = parse_target(url)
        self._resolver.allowed_addresses(target, deadline)

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
        accept = image_check(self.limits, conditional=bool(etag or last_modified))
        return self._exchange(
            "GET", url, body=None, headers=headers, follow=True, accept=accept, total_timeout=total_timeout
        )

    def close(self) -> None:
        self._sender.close()
        self._resolver.close()

    # --- one exchange, redirects included ------------------------------------------------------------

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        follow: bool,
        accept: Callable[[BaseHTTPResponse, Target], None] | None,
        total_timeout: float | None = None,
    ) -> Response:
        """One logged exchange under one total deadline."""
        started = time.monotonic()
        total = self.limits.total_timeout if total_timeout is None else total_timeout
        deadline = Deadline(started + total, total)
        self._watchdog.watch(deadline)
        record = _ExchangeRecord(url)
        outcome = "-"
        request = _Request(
            method, url, body, {"User-Agent": self.limits.user_agent, **(headers or {})}, follow, accept
        )
        try:
            response = self._follow(request, deadline, record)
            outcome = str(response.status)
            return response
        except FetchError as exc:
            outcome = str(exc)
            exc.waited = deadline.waited
            if self.hosts is not None and exc.retry_after is None and record.origin:
                exc.retry_after = self.hosts.retry_after(record.origin)
            raise
        finally:
            record.release_slot()
            deadline.finish()
            logger.info(
                "fetch %s %s via %s: %s, %d bytes, %d ms, %d redirects",
                method,
                record.host,
                record.via,
                outcome,
                record.received,
                int((time.monotonic() - started) * 1000),
                record.redirects,
            )

    def _follow(self, request: _Request, deadline: Deadline, record: _ExchangeRecord) -> Response:
        """Send ``request`` hop by hop (each target checked anew), then read the last hop's body."""
        method, body, send_headers, accept = request.method, request.body, request.headers, request.accept
        target = parse_target(request.url)
        previous: Target | None = None
        while True:
            record.host = target.host
            self._enter_host(target, deadline, record)
            try:
                resp, ip = self._sender.send(method, target, body, send_headers, deadline)
            except Refused as exc:
                if previous is None:
                    raise
                raise Refused(str(exc), redirect_from=previous, code=exc.code) from None
            record.via = str(ip)
            if self.hosts is not None:
                self.hosts.answered(
                    record.origin, target.host_header, resp.status, resp.headers.get("Retry-After")
                )
            location = resp.headers.get("Location")
            if not (request.follow and resp.status in REDIRECT_STATUSES and location):
                break
            discard(resp, deadline)
            if record.redirects >= self.limits.max_redirects:
                raise FetchError(
                    f"more than {self.limits.max_redirects} redirects from {record.first_host}",
                    code=Reason.TOO_MANY_REDIRECTS,
                )
            record.redirects += 1
            previous, target = target, redirect_target(target, location)
            send_headers = redirected_headers(send_headers, previous, target)
            method, body = redirected_method(resp.status, method, body)
        try:
            if accept is not None:
                accept(resp, target)
            budget = self.memory if accept is not None else None  # images only, not webhooks
            reader = BodyReader(self.limits, budget)
            data = b"" if resp.status == 304 else reader.read(resp, target, deadline)
        except FetchError as exc:
            discard(resp, deadline)
            if deadline.passed() and not isinstance(exc, BudgetFull):  # the host answered, but its body
                exc.retryable = False  # outlasted the deadline: it would again
            raise
        except BaseException:
            discard(resp, deadline)
            raise
        record.received = len(data)
        release(resp, deadline)
        return Response(resp.status, HTTPHeaderDict(resp.headers), data, target.url, deadline.waited)

    def _enter_host(self, target: Target, deadline: Deadline, record: _ExchangeRecord) -> None:
        """Before each hop: the host policy's breaker and Retry-After, then one of its connection slots
        (the previous hop's is given back first: a redirect loop on one host needs only one).

        The wait for a slot is not on the deadline (nor, through ``waited``, on an image's budget):
        with a host's few connections taken by our own other downloads, the wait says nothing about
        the host, and 40 threads waiting on a wedged host's one connection spent their whole budget
        there before its breaker could open and fail them for the real reason.
        """
        if self.hosts is None:
            return
        record.release_slot()
        record.origin = origin = target.origin
        slot = contextlib.ExitStack()
        wait = self.limits.slot_wait
        if (end := _slot_waits_end.get()) is not None:
            wait = max(0.0, min(wait, end - time.monotonic()))
        with deadline.paused():
            slot.enter_context(
                self.hosts.admitted(origin, target.host_header, wait, first_wave=_parks_images.get())
            )
        record.slot = slot


def fetcher_from_settings() -> Fetcher:
    limits = FetchLimits(
        connect_timeout=settings.FETCH_CONNECT_TIMEOUT,
        read_timeout=settings.FETCH_READ_TIMEOUT,
        total_timeout=settings.FETCH_TOTAL_TIMEOUT,
        max_bytes=settings.FETCH_MAX_BYTES,
        max_redirects=settings.FETCH_MAX_REDIRECTS,
        # A wait for a host's connection slot longer than a task may run would outlast its task (a
        # webhook's); a batch's downloads stop waiting sooner, at its own limit (slot_waits_end).
        slot_wait=float(settings.CELERY_TASK_SOFT_TIME_LIMIT),
    )
    # Enough pooled connections per host for a batch's threads, so none is opened only to be dropped.
    pool_size = max(8, int(getattr(settings, "IMAGE_DOWNLOADS", 8)))
    samples = (settings.SAMPLE_IMAGES_URL,) if settings.SAMPLE_IMAGES else ()
    # Imported here: hostpolicy's errors are FetchErrors, so it imports this package.
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
