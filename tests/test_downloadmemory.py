"""The per-process budget of downloaded bytes (catalog/downloadmemory.py) through the real fetcher."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from catalog.downloadmemory import ByteBudget
from catalog.fetch import Fetcher, FetchError, FetchLimits
from tests.test_fetch import ALLOW_LOCAL, Origin, respond

BODY = b"\xff\xd8" + b"x" * 998  # 1000 bytes


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin(routes={"/a.jpg": lambda o, c, r: respond(c, 200, BODY, "image/jpeg")})
    yield server
    server.close()


def test_downloads_wait_for_room_and_threads_give_their_bytes_back(origin: Origin) -> None:
    budget = ByteBudget(2500)  # two bodies, not three
    fetcher = Fetcher(FetchLimits(total_timeout=20), ALLOW_LOCAL, memory=budget)
    holding = threading.Barrier(3)
    release = threading.Event()
    done: list[int] = []

    def download() -> None:
        fetcher.fetch_image(origin.url("/a.jpg"))
        done.append(budget.used)
        holding.wait(20) if len(done) <= 2 else None
        release.wait(20)
        budget.release_mine()

    threads = [threading.Thread(target=download) for _ in range(3)]
    for thread in threads:
        thread.start()
    holding.wait(20)  # two hold their bodies...
    assert budget.used == 2000 and len(done) == 2, "...and the third waits for room"
    release.set()
    for thread in threads:
        thread.join(20)
    assert len(done) == 3 and budget.used == 0 and budget.peak == 2000
    fetcher.close()


def test_a_download_that_finds_no_room_before_its_deadline_fails_and_can_be_retried(origin: Origin) -> None:
    budget = ByteBudget(1500)
    assert budget.reserve(1000, lambda: 1.0)  # another thread's body, held
    fetcher = Fetcher(FetchLimits(total_timeout=0.5), ALLOW_LOCAL, memory=budget)
    with pytest.raises(FetchError) as info:
        fetcher.fetch_image(origin.url("/a.jpg"))
    assert str(info.value) == "no room to hold the image from 127.0.0.1 before the deadline"
    assert info.value.retryable
    fetcher.close()


def test_webhook_answers_are_not_counted(origin: Origin) -> None:
    budget = ByteBudget(10)
    fetcher = Fetcher(FetchLimits(), ALLOW_LOCAL, memory=budget)
    assert fetcher.request("GET", origin.url("/a.jpg")).body == BODY
    assert budget.used == 0
    fetcher.close()
