"""Sending one request to one hop's target, at an address the resolver checked.

Pools are keyed by scheme, pinned IP, port and host name, so the address connected to is the one
that was checked (no second lookup, so no DNS rebinding); ``Host`` carries the name and, for https,
so do SNI and certificate verification. Connections are guarded by the exchange's deadline
(catalog/fetch/deadline.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse

from catalog.fetch.deadline import GUARDED_POOL_CLASSES, Deadline, guarded_by
from catalog.fetch.errors import Unreachable, from_urllib3, too_slow
from catalog.fetch.limits import FetchLimits
from catalog.fetch.resolver import AddressResolver
from catalog.fetch.targets import Target
from sansio.addresses import IPAddress

if TYPE_CHECKING:
    from catalog.hostpolicy import HostPolicy


class Sender:
    """Sends requests over pooled connections to checked addresses; thread-safe, one per Fetcher."""

    def __init__(
        self,
        limits: FetchLimits,
        resolver: AddressResolver,
        hosts: HostPolicy | None,
        *,
        ca_certs: str | None,
        pool_size: int,
        max_pools: int,
    ) -> None:
        self._limits = limits
        self._resolver = resolver
        self._hosts = hosts  # told of connections that got no answer
        self._pools = urllib3.PoolManager(
            num_pools=max_pools,
            maxsize=pool_size,
            block=False,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )
        self._pools.pool_classes_by_scheme = dict(GUARDED_POOL_CLASSES)

    def send(
        self,
        method: str,
        target: Target,
        body: bytes | None,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> tuple[BaseHTTPResponse, IPAddress]:
        """The response's head (its body not read yet), and the address that gave it."""
        addresses = self._resolver.allowed_addresses(target, deadline)
        send = {k: v for k, v in headers.items() if k.lower() != "host"}
        send["Host"] = target.host_header
        last_error: Unreachable | None = None
        for ip in addresses:  # the next checked address only if this one could not be reached
            if deadline.passed():
                break
            try:
                return self._send_to(ip, method, target, body=body, headers=send, deadline=deadline), ip
            except Unreachable as exc:
                last_error = exc
        if last_error is not None and not deadline.passed():
            raise last_error
        raise too_slow(target, deadline)

    def close(self) -> None:
        self._pools.clear()

    def _send_to(
        self,
        ip: IPAddress,
        method: str,
        target: Target,
        *,
        body: bytes | None,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> BaseHTTPResponse:
        pool_kwargs: dict[str, object] = {"server_hostname": target.host}
        if target.scheme == "https":
            pool_kwargs["assert_hostname"] = target.host
        pool = self._pools.connection_from_host(str(ip), target.port, target.scheme, pool_kwargs)
        remaining = deadline.remaining()
        timeout = urllib3.Timeout(
            connect=max(0.001, min(self._limits.connect_timeout, remaining)),
            read=max(0.001, min(self._limits.read_timeout, remaining)),
        )
        try:
            with guarded_by(deadline):
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
            raise from_urllib3(exc, target, deadline, self._limits) from None
        if deadline.passed():  # the watchdog cut the head short, and http.client took that for its end
            discard(resp, deadline)
            self._note_no_answer(None, target, deadline)
            raise too_slow(target, deadline)
        return resp

    def _note_no_answer(self, exc: HTTPError | None, target: Target, deadline: Deadline) -> None:
        """Tell the host policy of a connection that timed out or was refused before any answer."""
        if self._hosts is None:
            return
        timeout = deadline.passed() or isinstance(exc, (ConnectTimeoutError, ReadTimeoutError))
        refused = isinstance(exc, NewConnectionError)  # a subclass of ConnectTimeoutError in urllib3 2
        if refused and not deadline.passed():
            self._hosts.failed(target.origin, target.host_header, timeout=False)
        elif timeout:
            self._hosts.failed(target.origin, target.host_header, timeout=True)


def release(resp: BaseHTTPResponse, deadline: Deadline) -> None:
    """Give a response's connection back to its pool, for reuse."""
    deadline.detach()  # first, so the watchdog cannot touch a socket the pool hands to someone else
    resp.release_conn()


def discard(resp: BaseHTTPResponse, deadline: Deadline) -> None:
    """Drop a response we will not read: its connection is closed, not reused."""
    deadline.detach()
    resp.close()
    resp.release_conn()
