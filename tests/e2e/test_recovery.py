"""Work in flight comes back without waiting a lease: after a power cut, and after the soft time limit.

Both stacks run with a lease of an hour, so nothing here can have come back through a lease's
expiry: what is asserted is the state (claims released, images queued again, attempts counted),
reached well before any lease could have passed.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NO_LEASE_EXPIRY = {"IMAGE_LEASE_SECONDS": "3600"}


def image_states(stack: Stack, request_id: str) -> list[tuple[int, str, int]]:
    """(pk, status, attempts) of each image of the request, first rows first, read from the database."""
    return stack.read_database(
        "SELECT i.id, i.status, i.attempts FROM catalog_productimage i JOIN catalog_processingrequest r "
        "ON r.id = i.request_id WHERE r.request_id = ? ORDER BY i.id",
        (request_id.replace("-", ""),),
    )


def wait_for(condition: Callable[[], bool], what: str, stack: Stack, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen after {timeout}s\n{stack.logs()}")


def csv_of(urls: list[str]) -> bytes:
    rows = "".join(f"{n + 1},Item {n + 1},{url}\n" for n, url in enumerate(urls))
    return ("S. No.,Product Name,Input Image Urls\n" + rows).encode()


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own, to be killed: web and one worker named worker1, under a one-hour lease."""
    stack = Stack(tmp_path, dict(NO_LEASE_EXPIRY))
    stack.migrate()
    try:
        yield stack
    finally:
        stack.stop()


def test_after_a_power_cut_the_images_in_flight_are_queued_again_at_start_up(
    fresh_stack: Stack, image_server: ImageServer
) -> None:
    stack = fresh_stack
    stack.start_worker("worker1")
    stack.start_web()
    gate = threading.Event()  # the downloads hang until the power is back
    prefix = uuid.uuid4().hex
    urls = [image_server.add(f"{prefix}/{n}.jpg", photo((64, 48), "JPEG"), gate=gate) for n in range(6)]
    code, accepted = stack.upload(csv_of(urls))
    assert code == 202, accepted
    request_id = accepted["request_id"]
    wait_for(lambda: any(s == "running" for _, s, _ in image_states(stack, request_id)), "a claim", stack)

    for name in list(stack.processes):  # the power cut: every process of the stack at once
        stack.kill(name, signal.SIGKILL)
    held = [pk for pk, status, _ in image_states(stack, request_id) if status == "running"]
    assert held, "the cut left claims behind"
    gate.set()

    stack.processes.clear()
    stack.start_worker("worker1")  # the same node name: its earlier claims are known to be dead
    stack.start_web()
    status = stack.wait_complete(request_id, timeout=120)

    assert status["status"] == "completed", status
    states = {pk: (status, attempts) for pk, status, attempts in image_states(stack, request_id)}
    assert all(states[pk] == ("done", 2) for pk in held), "each held image was claimed once more"
    assert "held by an earlier run of worker1@" in stack.log_path("worker1").read_text()


def heavy_png() -> bytes:
    """A 36-megapixel gradient: small to download, most of a second to decode, scale and encode again."""
    gradient = Image.linear_gradient("L").resize((6000, 6000)).convert("RGB")
    buf = io.BytesIO()
    gradient.save(buf, "PNG")
    return buf.getvalue()


def test_a_batch_cut_by_the_soft_time_limit_keeps_what_finished_and_queues_the_rest_at_once(
    tmp_path: Path, image_server: ImageServer
) -> None:
    env = {
        **NO_LEASE_EXPIRY,
        "CELERY_TASK_SOFT_TIME_LIMIT": "2",
        "FETCH_TOTAL_TIMEOUT": "1.5",  # the settings refuse a limit shorter than a batch's downloads
        "FETCH_CONNECT_TIMEOUT": "1",  # within IMAGE_TOTAL_BUDGET (1.5 x 1.5 s), which the settings want
        "IMAGE_BATCH_SIZE": "12",
        "IMAGE_DOWNLOADS": "16",
        "IMAGE_BATCHES_PER_PROCESS": "1",  # its 16 downloads all this batch's
        "IMAGE_TRANSFORMS": "1",  # one at a time: the heavy ones take seconds together
        "IMAGE_MAX_ATTEMPTS": "3",
    }
    stack = Stack(tmp_path, env)
    stack.migrate()
    try:
        stack.start_worker("worker1", concurrency=1)
        stack.start_web()
        prefix = uuid.uuid4().hex
        light = [image_server.add(f"{prefix}/light{n}.jpg", photo((64, 48), "JPEG")) for n in range(2)]
        heavy_body = heavy_png()
        # A little later than the light ones, so those surely take the one transform slot first.
        heavy = [image_server.add(f"{prefix}/heavy{n}.png", heavy_body, delay=0.3) for n in range(10)]
        # Light ones after them: a request's first batch is a whole one (these 12) only while it has
        # four batches' worth to send (its last images go in smaller ones, services/dispatching.py).
        after = [image_server.add(f"{prefix}/after{n}.jpg", photo((64, 48), "JPEG")) for n in range(36)]
        code, accepted = stack.upload(csv_of(light + heavy + after))  # the first batch: light, then heavy
        assert code == 202, accepted
        status = stack.wait_complete(accepted["request_id"], timeout=240)
        states = image_states(stack, accepted["request_id"])
    finally:
        stack.stop()

    assert status["progress"]["images"] == 48 and status["completed"], status
    assert [s[1:] for s in states[:2]] == [("done", 1), ("done", 1)], "finished before the cut: kept"
    assert max(attempts for _, _, attempts in states[2:12]) >= 2, "the rest was claimed again"
    assert "soft time limit: " in stack.log_path("worker1").read_text()


def claimants(stack: Stack, request_id: str) -> set[str]:
    rows = stack.read_database(
        "SELECT i.claimed_by FROM catalog_productimage i JOIN catalog_processingrequest r "
        "ON r.id = i.request_id WHERE r.request_id = ? AND i.status = 'running'",
        (request_id.replace("-", ""),),
    )
    return {name for (name,) in rows}


def test_the_claims_of_a_pool_process_that_died_are_released_at_once(
    fresh_stack: Stack, image_server: ImageServer
) -> None:
    stack = fresh_stack
    stack.start_worker("worker1", concurrency=2)
    stack.start_web()
    gate = threading.Event()
    prefix = uuid.uuid4().hex
    urls = [image_server.add(f"{prefix}/{n}.jpg", photo((64, 48), "JPEG"), gate=gate) for n in range(4)]
    code, accepted = stack.upload(csv_of(urls))
    assert code == 202, accepted
    request_id = accepted["request_id"]
    wait_for(lambda: bool(claimants(stack, request_id)), "a claim", stack)
    [holder] = claimants(stack, request_id)
    node, main_pid, pool_pid = holder.rsplit("/", 2)
    assert node.startswith("worker1@") and int(main_pid) == stack.processes["worker1"].pid

    os.kill(int(pool_pid), signal.SIGKILL)  # the kernel's OOM killer, say
    gate.set()
    status = stack.wait_complete(request_id, timeout=120)

    assert status["status"] == "completed", status
    assert [attempts for _, _, attempts in image_states(stack, request_id)] == [2, 2, 2, 2]
    assert "died: 4 images they held are queued again" in stack.log_path("worker1").read_text()
