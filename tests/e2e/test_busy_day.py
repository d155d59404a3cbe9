"""A busy day on the embedded default: a small request behind a big one, a big backlog across a restart.

The big request's images all fail fast (404s). The broker holds only the batches in flight: the rest
waits in the database, sent round-robin between requests (catalog/services/dispatching.py).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from tests.e2e.test_pipeline import photo
from tests.e2e.test_recovery import csv_of
from tests.support import backends
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIG = 20_000
IN_FLIGHT = 12  # batches


def broker_messages(stack: Stack) -> int:
    """Messages waiting in the broker's queues (not those a worker holds)."""
    url = stack.env.get("CELERY_BROKER_URL", "")
    if url.startswith("redis://"):
        with redis.Redis.from_url(url) as client:
            return int(client.llen("images")) + int(client.llen("control"))
    return sum(1 for path in (stack.root / "var/broker/queue").iterdir() if path.name.endswith(".msg"))


@pytest.fixture(params=["embedded", "redis+postgresql"])
def backing(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    with ExitStack() as resources:
        env: dict[str, str] = {}
        if "postgresql" in request.param:
            env["DATABASE_URL"] = resources.enter_context(backends.postgres_database())
            env["CELERY_BROKER_URL"] = resources.enter_context(backends.redis_broker(db=11))  # its own
        yield env


def test_a_small_request_behind_a_big_backlog_and_a_restart(
    tmp_path: Path, image_server: ImageServer, backing: dict[str, str]
) -> None:
    env = {"IMAGE_LEASE_SECONDS": "3600", "IMAGE_BATCHES_IN_FLIGHT": str(IN_FLIGHT), **backing}
    stack = Stack(tmp_path, env)
    stack.migrate()
    try:
        stack.start_worker("worker1", concurrency=None)
        stack.start_web()
        stack.wait_worker_ready("worker1")
        prefix = uuid.uuid4().hex
        missing = [image_server.url(f"{prefix}/missing/{n}.jpg") for n in range(BIG)]  # every one a 404
        code, big = stack.upload(csv_of(missing), filename="big.csv")
        assert code == 202, big
        small_url = image_server.add(f"{prefix}/small.jpg", photo((64, 48), "JPEG"), "image/jpeg")
        code, small = stack.upload(csv_of([small_url]), filename="small.csv")
        assert code == 202, small

        # Fairness: the small request completes while the big one still has most of its images left.
        status = stack.wait_complete(small["request_id"], timeout=120, poll=0.1)
        behind = stack.status(big["request_id"])
        assert status["status"] == "completed", status
        assert behind["progress"]["done"] + behind["progress"]["failed"] < BIG // 2, behind["progress"]

        # A restart of the whole stack in the middle (a power cut), with the broker watched throughout.
        most = broker_messages(stack)
        deadline = time.monotonic() + 300
        while (p := stack.status(big["request_id"])["progress"])["failed"] < BIG * 0.3:
            assert time.monotonic() < deadline, f"no progress: {p}\n{stack.logs()}"
            most = max(most, broker_messages(stack))
            time.sleep(0.2)
        for name in list(stack.processes):
            stack.kill(name, signal.SIGKILL)
        stack.processes.clear()
        stack.start_worker("worker1", concurrency=None)
        stack.start_web()
        deadline = time.monotonic() + 600
        while not (done := stack.status(big["request_id"]))["completed"]:
            assert time.monotonic() < deadline, f"not complete: {done['progress']}\n{stack.logs()}"
            most = max(most, broker_messages(stack))
            time.sleep(0.2)
    finally:
        stack.stop()

    assert done["status"] == "failed" and done["progress"]["failed"] == BIG, done["progress"]
    # Before the change, every queued image had its message from the start (1,250 of them here) and
    # each reconciler round added more. Now: the batches in flight, sent again once after the
    # restart, and a few control messages.
    assert most <= 2 * IN_FLIGHT + 8, f"{most} messages in the broker at once"
