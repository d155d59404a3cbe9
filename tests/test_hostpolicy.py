"""Per-host politeness and the breaker (catalog/hostpolicy.py) through the real fetcher and real servers
on 127.0.0.1: a wedged host (accepts, never answers), one that refuses connections, one answering 429
with Retry-After, a slow one behind a connection cap, a slow-drip body. Each asserts what happened to
which image and how many connections each host saw, never how long anything took.
"""

from __future__ import annotations

import functools
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from catalog.fetch import Fetcher, FetchError, FetchLimits, Response, parking_images, slot_waits_end
from catalog.hostpolicy import (
    HostBusy,
    HostLimits,
    HostPolicy,
    HostThrottled,
    HostUnavailable,
    retry_after_seconds,
)
from sansio import addresses
from sansio.reasons import Reason
from tests.support.hostile import Wedged, closed_port
from tests.test_fetch import ALLOW_LOCAL, PNG, FakeDNS, Origin, Request, fake_dns, head_then, respond

__all__ = ["fake_dns"]  # the fixture, used below by name

FAST = {"connect_timeout": 0.5, "read_timeout": 0.3, "total_timeout": 3.0}


@pytest.fixture
def wedged() -> Iterator[Wedged]:
    server = Wedged()
    yield server
    server.close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin(routes={"/ok.png": lambda o, c, r: respond(c, 200, PNG)})
    yield server
    server.close()


@pytest.fixture
def make_fetcher(tmp_path: Path) -> Iterator[Callable[..., Fetcher]]:
    made: list[Fetcher] = []

    def make(
        hosts: HostLimits | None = None, directory: Path | None = None, dns_ttl: float = 0, **limits: Any
    ) -> Fetcher:
        policy = HostPolicy(directory or tmp_path / "hosts", hosts or HostLimits(breaker_after=3))
        fetcher = Fetcher(FetchLimits(**{**FAST, **limits}), ALLOW_LOCAL, hosts=policy, dns_ttl=dns_ttl)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


def outcome(fetcher: Fetcher, url: str) -> str | FetchError:
    try:
        fetcher.fetch_image(url)
    except FetchError as exc:
        return exc
    return "done"


def test_a_wedged_host_opens_its_breaker_and_its_other_images_fail_fast(
    wedged: Wedged, origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    fetcher = make_fetcher()
    results = [outcome(fetcher, wedged.url(f"{n}.jpg")) for n in range(10)]

    timeouts, fast = results[:3], results[3:]
    assert all(isinstance(r, FetchError) and r.retryable and "sent nothing" in str(r) for r in timeouts)
    shown = f"127.0.0.1:{wedged.port}"
    assert all(isinstance(r, HostUnavailable) and not r.retryable for r in fast)
    assert {r.code for r in results if isinstance(r, FetchError)} == {Reason.TIMEOUT}, "the breaker's cause"
    assert {str(r) for r in fast} == {f"{shown} is not answering: 3 timeouts in a row"}
    assert wedged.accepted == 3, "the fast failures made no connection"
    assert outcome(fetcher, origin.url("/ok.png")) == "done", "another host is not held up"


def test_refused_connections_open_the_breaker_and_a_recovered_host_is_used_again(
    make_fetcher: Callable[..., Fetcher],
) -> None:
    port = closed_port()
    fetcher = make_fetcher(HostLimits(breaker_after=3, breaker_seconds=0.2))
    url = f"http://127.0.0.1:{port}/a.png"
    results = [outcome(fetcher, url) for _ in range(4)]
    assert all("could not connect" in str(r) for r in results[:3])
    assert str(results[3]) == f"127.0.0.1:{port} is not answering: 3 refused connections in a row"
    assert {r.code for r in results if isinstance(r, FetchError)} == {Reason.UNREACHABLE}

    server = Origin(routes={"/a.png": lambda o, c, r: respond(c, 200, PNG)})  # the host comes back...
    server.sock.close()
    server.sock = socket.create_server(("127.0.0.1", port))  # ...on the same port
    server.port = port
    threading.Thread(target=server._serve, daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while (result := outcome(fetcher, url)) != "done":
            assert isinstance(result, HostUnavailable), result  # fast, until the probe is due
            assert server.connections == 0
            assert time.monotonic() < deadline, "the breaker never let a probe through"
            time.sleep(0.02)
        assert server.connections == 1, "one probe, which found the host back"
        assert [outcome(fetcher, url) for _ in range(3)] == ["done"] * 3
    finally:
        server.close()


def test_a_host_that_answers_slowly_is_not_cut_off(make_fetcher: Callable[..., Fetcher]) -> None:
    """A slow-drip body times out, but the host did answer (a dripped status line counts as no
    answer): its other images are still tried."""
    server = Origin(routes={"/drip.png": lambda o, c, r: head_then(o, c, b"Content-Length: 100", PNG, 0.05)})
    try:
        fetcher = make_fetcher(total_timeout=0.4, read_timeout=1.0)
        results = [outcome(fetcher, server.url("/drip.png")) for _ in range(5)]
        assert all("took longer than 0.4 s" in str(r) for r in results), results
        assert server.connections == 5
    finally:
        server.close()


def test_retry_after_stops_every_download_from_that_host_until_then(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    busy = Origin(routes={"/a.png": lambda o, c, r: respond(c, 429, b"", None, {"Retry-After": "120"})})
    try:
        fetcher = make_fetcher()
        first = outcome(fetcher, busy.url("/a.png"))
        assert isinstance(first, FetchError) and first.retryable and str(first).startswith("HTTP 429")
        assert first.retry_after is not None and 100 < first.retry_after <= 120

        second = outcome(fetcher, busy.url("/b.png"))
        assert isinstance(second, HostThrottled) and second.retryable
        assert first.code == second.code == Reason.HTTP_ERROR
        assert second.retry_after is not None and 100 < second.retry_after <= 120
        assert f"127.0.0.1:{busy.port} asked us to wait" in str(second)
        assert len(busy.requests) == 1, "nothing was sent before the Retry-After"
        assert outcome(fetcher, origin.url("/ok.png")) == "done", "another host is not held up"
    finally:
        busy.close()


def test_retry_after_forms() -> None:
    now = time.time()
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds(formatdate(now + 60, usegmt=True), now) == pytest.approx(60, abs=1)
    assert retry_after_seconds(formatdate(now - 60, usegmt=True), now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_connections_per_host_are_capped_and_other_hosts_go_on(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    gate = threading.Event()
    lock = threading.Lock()
    now = {"in": 0, "most": 0}

    def slow(o: Origin, conn: socket.socket, request: Request) -> bool:
        with lock:
            now["in"] += 1
            now["most"] = max(now["most"], now["in"])
        gate.wait(20)
        with lock:
            now["in"] -= 1
        return respond(conn, 200, PNG)

    server = Origin(routes={f"/{n}.png": slow for n in range(6)})
    try:
        fetcher = make_fetcher(HostLimits(connections=2), read_timeout=30, total_timeout=30)
        results: list[object] = []
        threads = [
            threading.Thread(target=lambda n=n: results.append(outcome(fetcher, server.url(f"/{n}.png"))))
            for n in range(6)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while now["in"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert outcome(fetcher, origin.url("/ok.png")) == "done", "another host goes on meanwhile"
        assert now["in"] == 2
        gate.set()
        for thread in threads:
            thread.join(30)
        assert results == ["done"] * 6
        assert now["most"] == 2
        assert server.connections <= 2, "the two connections were kept alive and reused"
    finally:
        gate.set()
        server.close()


def hold_the_one_connection(fetcher: Fetcher, server: Origin) -> threading.Thread:
    """A download of /held.png in a thread, once the host has its request (its one connection taken)."""
    holder = threading.Thread(target=lambda: fetcher.fetch_image(server.url("/held.png")))
    holder.start()
    deadline = time.monotonic() + 20
    while not server.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return holder


def test_a_wait_for_a_hosts_connection_is_not_on_the_deadline(make_fetcher: Callable[..., Fetcher]) -> None:
    """Waiting for our own turn at a host (its one connection taken by another of our downloads) is
    not the host being slow: a download whose whole deadline passes while it waits still runs."""
    gate = threading.Event()
    server = Origin(
        routes={
            "/held.png": lambda o, c, r: gate.wait(20) and respond(c, 200, PNG),
            "/ok.png": lambda o, c, r: respond(c, 200, PNG),
        }
    )
    try:
        fetcher = make_fetcher(HostLimits(connections=1), read_timeout=30, total_timeout=30)
        holder = hold_the_one_connection(fetcher, server)
        results: list[object] = []
        waiter = threading.Thread(
            target=lambda: results.append(fetcher.fetch_image(server.url("/ok.png"), total_timeout=0.3))
        )
        started = time.monotonic()
        waiter.start()
        while time.monotonic() < started + 0.6:  # twice its deadline, waiting its turn
            assert waiter.is_alive(), results
            time.sleep(0.01)
        gate.set()
        waiter.join(20)
        holder.join(20)
        (response,) = results
        assert isinstance(response, Response) and response.status == 200
        assert response.waited >= 0.6, "the wait is reported, to leave it out of the image's budget"
    finally:
        gate.set()
        server.close()


def test_a_wait_for_a_hosts_connection_ends_with_its_batchs_time(
    make_fetcher: Callable[..., Fetcher],
) -> None:
    """Past the end its batch set (slot_waits_end), a download waiting for its turn at a host gives
    up, retryable, rather than hold a thread for a batch that has given its image back."""
    gate = threading.Event()
    server = Origin(routes={"/held.png": lambda o, c, r: gate.wait(20) and respond(c, 200, PNG)})
    try:
        fetcher = make_fetcher(HostLimits(connections=1), read_timeout=30, total_timeout=30)
        holder = hold_the_one_connection(fetcher, server)
        with slot_waits_end(time.monotonic() + 0.3):
            result = outcome(fetcher, server.url("/held.png"))
        assert not gate.is_set() and holder.is_alive(), "given up while the connection was still held"
        assert isinstance(result, FetchError) and result.retryable and result.code == Reason.TIMEOUT
        assert str(result) == (
            f"127.0.0.1:{server.port} had no free connection of its 1 in time: "
            "our other downloads from it held them all"
        )
        assert len(server.requests) == 1
        gate.set()
        holder.join(20)
    finally:
        gate.set()
        server.close()


def test_downloads_waiting_on_a_wedged_hosts_one_connection_fail_for_its_breaker(
    wedged: Wedged, make_fetcher: Callable[..., Fetcher]
) -> None:
    """Eight downloads at once, each with a deadline shorter than the three timeouts the breaker takes
    to open: the ones waiting for the host's one connection fail for the breaker, not for the wait."""
    fetcher = make_fetcher(HostLimits(connections=1, breaker_after=3), total_timeout=0.5)
    results: list[object] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        result = outcome(fetcher, wedged.url(f"{n}.jpg"))
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    shown = f"127.0.0.1:{wedged.port}"
    broken = [r for r in results if isinstance(r, HostUnavailable)]
    assert {str(r) for r in broken} == {f"{shown} is not answering: 3 timeouts in a row"}
    assert len(broken) == 5, results
    assert wedged.accepted == 3


def _open_breaker(directory: Path, key: str) -> None:
    policy = HostPolicy(directory, HostLimits(breaker_after=2))
    policy.failed(key, "elsewhere", timeout=True)
    policy.failed(key, "elsewhere", timeout=True)


def test_the_breaker_is_shared_by_the_processes_of_a_machine(
    wedged: Wedged, make_fetcher: Callable[..., Fetcher], tmp_path: Path
) -> None:
    process = multiprocessing.get_context("fork").Process(
        target=_open_breaker, args=(tmp_path / "hosts", f"http://127.0.0.1:{wedged.port}")
    )
    process.start()
    process.join(30)
    assert process.exitcode == 0
    fetcher = make_fetcher(HostLimits(breaker_after=2))
    result = outcome(fetcher, wedged.url("a.png"))
    assert isinstance(result, HostUnavailable), result
    assert str(result).endswith("is not answering: 2 timeouts in a row")
    assert wedged.accepted == 0


def test_dns_answers_are_reused_and_checked_at_every_use(
    origin: Origin, make_fetcher: Callable[..., Fetcher], fake_dns: FakeDNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns.answers["img.test"] = ["127.0.0.1"]
    checks: list[str] = []
    real = addresses.forbidden_reason

    def spy(ip: Any, allowed: Any) -> str | None:
        checks.append(str(ip))
        return real(ip, allowed)

    monkeypatch.setattr("catalog.fetch.resolver.forbidden_reason", spy)
    fetcher = make_fetcher(dns_ttl=60)
    for _ in range(3):
        assert outcome(fetcher, origin.url("/ok.png", host="img.test")) == "done"
    assert fake_dns.lookups.count("img.test") == 1
    assert checks == ["127.0.0.1"] * 3


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    return thread, result


def parked_outcome(fetcher: Fetcher, url: str) -> str | FetchError:
    with parking_images():
        return outcome(fetcher, url)


def test_a_host_that_never_answered_gets_a_first_wave_and_its_other_images_wait_for_their_turn(
    wedged: Wedged, origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    fetcher = make_fetcher(HostLimits(breaker_after=3, first_wave=2), read_timeout=30, total_timeout=30)
    wave = [in_thread(functools.partial(parked_outcome, fetcher, wedged.url(f"{n}.jpg"))) for n in range(2)]
    wait_until(lambda: wedged.accepted == 2, "the first wave connects")

    third = parked_outcome(fetcher, wedged.url("2.jpg"))
    assert isinstance(third, HostBusy), third
    assert third.turn_key == f"http://127.0.0.1:{wedged.port}" and third.retryable
    assert wedged.accepted == 2, "the third made no connection"
    assert parked_outcome(fetcher, origin.url("/ok.png")) == "done", "another host goes on meanwhile"
    turn = threading.Event()
    assert fetcher.hosts is not None
    fetcher.hosts.when_turn(third.turn_key, turn.set)
    assert not turn.is_set(), "no place in the wave is free yet"

    for conn in wedged.held:
        conn.close()  # the wave's downloads fail: their places free
    for thread, _ in wave:
        thread.join(30)
    assert turn.wait(20), "a place freed: the parked image's turn came"
    assert all(isinstance(r, FetchError) for _, result in wave for r in result)


def test_a_host_that_answered_lately_is_not_held_to_a_first_wave(
    make_fetcher: Callable[..., Fetcher],
) -> None:
    gate = threading.Event()

    def held(o: Origin, conn: socket.socket, request: Request) -> bool:
        gate.wait(20)
        return respond(conn, 200, PNG)

    server = Origin(routes={"/held.png": held, "/ok.png": lambda o, c, r: respond(c, 200, PNG)})
    try:
        fetcher = make_fetcher(HostLimits(first_wave=1), read_timeout=30, total_timeout=30)
        assert fetcher.hosts is not None
        first, result = in_thread(lambda: parked_outcome(fetcher, server.url("/held.png")))
        wait_until(lambda: len(server.requests) == 1, "the first wave's one download is sent")
        parked = parked_outcome(fetcher, server.url("/ok.png"))
        assert isinstance(parked, HostBusy), parked
        turn = threading.Event()
        assert parked.turn_key is not None
        fetcher.hosts.when_turn(parked.turn_key, turn.set)

        gate.set()  # the host answers: every image parked for it gets its turn
        assert turn.wait(20)
        first.join(30)
        assert result == ["done"]
        gate.clear()
        again = [in_thread(lambda: parked_outcome(fetcher, server.url("/held.png"))) for _ in range(3)]
        wait_until(lambda: len(server.requests) == 4, "three at once: it answered lately")
        gate.set()
        for thread, _ in again:
            thread.join(30)
        assert [r for _, result in again for r in result] == ["done"] * 3
    finally:
        gate.set()
        server.close()


def test_without_parking_a_download_is_never_held_to_a_first_wave(
    wedged: Wedged, make_fetcher: Callable[..., Fetcher]
) -> None:
    """A webhook's delivery cannot be parked: it waits for its host as before."""
    fetcher = make_fetcher(HostLimits(first_wave=1), read_timeout=30, total_timeout=30)
    for n in range(2):
        in_thread(functools.partial(outcome, fetcher, wedged.url(f"{n}.jpg")))
    wait_until(lambda: wedged.accepted == 2, "both connect")
