"""A target's host to the addresses it stands for, every one allowed by the address policy.

The name is looked up in a worker thread, so a slow resolver is cut at the deadline, and the answer
is refused if *any* address in it is forbidden by ``sansio.addresses`` (a failed lookup is a
refusal, never a skipped check). Answers may be reused for a few seconds, but are checked again at
every use. The sender connects only to addresses this gave (catalog/fetch/sender.py).
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from ipaddress import IPv4Address

from catalog.fetch.deadline import Deadline
from catalog.fetch.errors import FetchError, Refused, in_seconds
from catalog.fetch.targets import Target
from sansio.addresses import IPAddress, IPNetwork, forbidden_reason, ip_from_host
from sansio.reasons import Reason

_LOOPBACK = forbidden_reason(IPv4Address("127.0.0.1"))


def _with_setting_hint(reason: str | None) -> str | None:
    """A local image server is a setting away: say which (only for loopback, where it is ours)."""
    if reason is None or _LOOPBACK is None or not reason.endswith(_LOOPBACK):  # also "a mapped form of …"
        return reason
    return f"{reason} (allow it with FETCH_ALLOWED_PRIVATE_NETWORKS)"


class AddressResolver:
    """Looks hosts up and checks their addresses; thread-safe, one per Fetcher."""

    def __init__(
        self,
        allowed: tuple[IPNetwork, ...],
        *,
        exempt_prefixes: tuple[str, ...],
        dns_ttl: float,
        connect_timeout: float,
    ) -> None:
        self._allowed = allowed  # private networks the policy lets through
        # URLs under these prefixes (scheme://ip:port/path/) skip the address policy: the service's
        # own sample images in development (settings.SAMPLE_IMAGES), that origin and path only.
        self._exempt_prefixes = exempt_prefixes
        self._dns_ttl = dns_ttl  # how long a lookup's answer is reused (it is checked at every use)
        self._dns_cache: dict[tuple[str, int], tuple[float, tuple[IPAddress, ...]]] = {}
        self._connect_timeout = connect_timeout  # the longest wait for a lookup
        self._lookups_lock = threading.Lock()
        self._lookups: ThreadPoolExecutor | None = None

    def allowed_addresses(self, target: Target, deadline: Deadline) -> tuple[IPAddress, ...]:
        """Every address ``target.host`` stands for, all allowed; or FetchError naming one that is not."""
        try:
            literal = ip_from_host(target.host)
        except ValueError:
            raise Refused(f"URL has no valid host: {target.url[:200]}", code=Reason.BAD_URL) from None
        if literal is not None:
            reason = _with_setting_hint(forbidden_reason(literal, self._allowed))
            if reason is not None and not self._exempt(target):
                plain = literal.version == 6 or str(literal) == target.host
                shown = target.host if plain else f"{target.host} means {literal}, which"
                raise Refused(f"{shown} is {reason}")
            return (literal,)
        addresses = self._resolve_cached(target, deadline)
        for ip in addresses:  # checked at every use, cached or not
            reason = _with_setting_hint(forbidden_reason(ip, self._allowed))
            if reason is not None:
                raise Refused(f"{target.host} resolves to {ip}, {reason}")
        return addresses

    def close(self) -> None:
        with self._lookups_lock:
            if self._lookups is not None:
                self._lookups.shutdown(wait=False, cancel_futures=True)
                self._lookups = None

    def _exempt(self, target: Target) -> bool:
        where = f"{target.scheme}://{target.host_header}{target.request_uri}"  # dot segments removed
        return any(where.startswith(prefix) for prefix in self._exempt_prefixes)

    def _lookup_threads(self) -> ThreadPoolExecutor:
        with self._lookups_lock:
            if self._lookups is None:
                self._lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fetch-dns")
            return self._lookups

    def _resolve_cached(self, target: Target, deadline: Deadline) -> tuple[IPAddress, ...]:
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

    def _resolve(self, target: Target, deadline: Deadline) -> tuple[IPAddress, ...]:
        wait = max(0.0, min(self._connect_timeout, deadline.remaining()))
        future = self._lookup_threads().submit(
            socket.getaddrinfo, target.host, target.port, 0, socket.SOCK_STREAM
        )
        try:
            infos = future.result(timeout=wait)
        except FutureTimeout:
            future.cancel()
            raise FetchError(
                f"could not resolve {target.host} in {in_seconds(wait)}", code=Reason.TIMEOUT, retryable=True
            ) from None
        except socket.gaierror as exc:
            permanent = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
            raise FetchError(
                f"could not resolve {target.host}", code=Reason.UNREACHABLE, retryable=not permanent
            ) from None
        except (UnicodeError, ValueError):
            raise Refused(f"URL has no valid host: {target.url[:200]}", code=Reason.BAD_URL) from None
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
                raise Refused(f"{target.host} resolves to {raw!r}, which is not an IP address")
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError(f"could not resolve {target.host}", code=Reason.UNREACHABLE)
        return tuple(addresses)
