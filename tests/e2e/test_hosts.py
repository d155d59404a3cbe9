"""Bad image hosts through the whole service: real workers, real servers on 127.0.0.1.

One catalogue holds images from a good host, a slow one, a wedged one (accepts, never answers), one
that refuses connections, one answering 429 with Retry-After, and a slow-drip body. Small timeouts
come from the settings' environment, so a bad host costs a second, not half a minute. Every assertion
is about what happened (which images were done, which failed with which reason, how many connections
each host saw), never about how long it took.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import start_stack
from tests.support.hostile import Answer, Answering, Wedged, closed_port
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BREAKER_AFTER = 3
RETRY_AFTER = 2
ENV = {
    "FETCH_CONNECT_TIMEOUT": "0.5",
    "FETCH_READ_TIMEOUT": "1",
    "FETCH_TOTAL_TIMEOUT": "2",
    "IMAGE_TOTAL_BUDGET": "3",
    "FETCH_HOST_CONNECTIONS": "1",  # one at a time: what each host saw follows from the rules alone
    "FETCH_HOST_BREAKER_AFTER": str(BREAKER_AFTER),
    "FETCH_HOST_BREAKER_SECONDS": "600",  # no probe during the test
}


def small_jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, 90, (seed * 5) % 256)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class Throttling:
    """Answers its first request with 429 and Retry-After, then serves images; counts how many
    requests came while it had asked for the wait, and the most connections open at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.until: float | None = None
        self.too_soon = 0
        self.server = Answering(self.answer)

    def answer(self, path: str) -> Answer:
        with self.lock:
            now = time.monotonic()
            if self.until is None:
                self.until = now + RETRY_AFTER
                return Answer(429, b"slow down", {"Retry-After": str(RETRY_AFTER)})
            if now < self.until:
                self.too_soon += 1
                return Answer(429, b"slow down", {"Retry-After": "1"})
        return Answer(200, small_jpeg(len(path)), {"Content-Type": "image/jpeg"})


@pytest.fixture(scope="module")
def hosts_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("hosts"), ENV)
    try:
        yield stack
    finally:
        stack.stop()


def failures(stack: Stack, request_id: str) -> dict[str, str]:
    resp = stack.get(f"{stack.base_url}/api/requests/{request_id}/failures.csv")
    assert resp.status == 200, resp.data
    rows = list(csv.DictReader(io.StringIO(resp.data.decode())))
    return {row["url"]: row["reason"] for row in rows}


def test_bad_hosts_cost_little_and_hold_up_no_one(
    hosts_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    prefix = uuid.uuid4().hex
    good = [image_server.add(f"{prefix}/{n}.jpg", small_jpeg(n)) for n in range(30)]
    slow = [image_server.add(f"{prefix}/slow{n}.jpg", small_jpeg(n), delay=0.3) for n in range(5)]
    wedged, throttling = Wedged(), Throttling()
    body = small_jpeg(1)
    drip = Answering(lambda path: Answer(200, body, {"Content-Type": "image/jpeg"}, drip=0.05))
    drip_head = Answering(lambda path: Answer(200, body, {"X-Slow": "a" * 200}, drip=0.05, drip_head=True))
    refusing = closed_port()
    try:
        stuck = [wedged.url(f"{n}.jpg") for n in range(30)]
        refused = [f"http://127.0.0.1:{refusing}/{n}.jpg" for n in range(10)]
        throttled = [throttling.server.url(f"{n}.jpg") for n in range(5)]
        dripping, dripping_head = drip.url("drip.jpg"), drip_head.url("drip.jpg")
        groups = [good, slow, stuck, refused, throttled, [dripping, dripping_head]]
        urls = [g[n] for n in range(max(map(len, groups))) for g in groups if n < len(g)]  # hosts mixed
        lines = ["S. No.,Product Name,Input Image Urls"]
        lines += [f"{n},SKU{n},{url}" for n, url in enumerate(urls, start=1)]
        code, accepted = hosts_stack.upload(("\n".join(lines) + "\n").encode())
        assert code == 202, accepted

        status = hosts_stack.wait_complete(accepted["request_id"], timeout=240)
        failed = failures(hosts_stack, accepted["request_id"])

        assert status["status"] == "completed_with_errors"
        assert not set(failed) & set(good + slow + throttled), {u: failed[u] for u in failed if u in good}
        assert status["progress"]["done"] == len(good + slow + throttled)

        shown = f"127.0.0.1:{wedged.port}"
        assert {failed[u] for u in stuck} == {f"{shown} is not answering: {BREAKER_AFTER} timeouts in a row"}
        assert wedged.accepted == BREAKER_AFTER, "the rest of its images failed without a connection"

        assert {failed[u] for u in refused} == {
            f"127.0.0.1:{refusing} is not answering: {BREAKER_AFTER} refused connections in a row"
        }

        assert throttling.too_soon == 0, "no request came before the Retry-After had passed"
        assert throttling.server.connections >= 1

        assert failed[dripping] == "download from 127.0.0.1 took longer than 2 s"
        assert len(drip.requests) == 1, "a body that outlasted the deadline is not tried again"
        assert re.fullmatch(
            r"download from 127\.0\.0\.1 took longer than 1 s \(gave up after 2 attempts, 3 s of downloads\)",
            failed[dripping_head],
        ), failed[dripping_head]
        assert len(drip_head.requests) == 2, "the budget of 3 s held two attempts of a 2 s deadline"
    finally:
        wedged.close()
        throttling.server.close()
        drip.close()
        drip_head.close()


FIRST_WAVE = 2
PROCESSES = 2  # the stack's worker: start_worker's default concurrency
WAVE_ENV = {
    "IMAGE_DOWNLOADS": "4",
    "IMAGE_HOST_FIRST_DOWNLOADS": str(FIRST_WAVE),
    "IMAGE_BATCH_SIZE": "2",
    "IMAGE_BATCHES_PER_PROCESS": "3",
    # Longer than the test waits: the wedged host's first wave stays held throughout, and its breaker
    # cannot open, so only the first wave can have kept threads and batches free for the good host.
    "FETCH_READ_TIMEOUT": "120",
    "FETCH_TOTAL_TIMEOUT": "120",
}


def test_a_wedged_hosts_first_wave_holds_few_threads_and_the_good_host_goes_on(
    tmp_path_factory: pytest.TempPathFactory, image_server: ImageServer
) -> None:
    """A host that accepts connections and never answers gets its first wave from each process; its
    other images wait for their turn without a thread, so a good host's images, listed after all of
    its images, are done while that wave is still held (without it the wedged host's images took
    every download thread until their read timeout)."""
    stack = start_stack(tmp_path_factory.mktemp("wave"), WAVE_ENV)
    wedged = Wedged()
    try:
        prefix = uuid.uuid4().hex
        good = [image_server.add(f"{prefix}/{n}.jpg", small_jpeg(n)) for n in range(24)]
        stuck = [wedged.url(f"{n}.jpg") for n in range(24)]
        lines = ["S. No.,Product Name,Input Image Urls"]
        lines += [f"{n},SKU{n},{url}" for n, url in enumerate(stuck + good, start=1)]
        code, accepted = stack.upload(("\n".join(lines) + "\n").encode())
        assert code == 202, accepted

        deadline = time.monotonic() + 90  # before the wave's read timeout, whatever this machine's speed
        while (status := stack.status(accepted["request_id"]))["progress"]["done"] < len(good):
            assert time.monotonic() < deadline, (status["progress"], wedged.accepted, stack.logs())
            time.sleep(0.1)

        assert status["progress"]["failed"] == 0, "the wedged host's wave is still out: nothing failed"
        assert 1 <= wedged.accepted <= FIRST_WAVE * PROCESSES, wedged.accepted
    finally:
        wedged.close()
        stack.stop()
