"""`manage.py runstack` (what `make run` starts): any stop signal stops it, with nothing left claimed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from config.celery import worker_environment
from tests.e2e.test_pipeline import photo
from tests.e2e.test_recovery import csv_of, image_states, wait_for
from tests.support.imageserver import ImageServer
from tests.support.stack import REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def worker_tunables(root: Path) -> set[str | None]:
    """GLIBC_TUNABLES of each of the stack's Celery processes (the worker, its pool processes), as
    /proc shows it: glibc parses it in place at the start, so only its first option is left there."""
    found: set[str | None] = set()
    for pid in processes_of(root):
        try:
            if b"celery" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        values = [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"GLIBC_TUNABLES=")]
        found.add(values[0] if values else None)
    return found


def processes_of(root: Path) -> list[int]:
    """Live processes started for this stack (they carry its VAR_DIR in their environment)."""
    marker = f"VAR_DIR={root / 'var'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize(
    ("target", "signum", "slow_host"),
    [
        ("group", signal.SIGINT, False),  # Ctrl-C in the terminal
        ("group", signal.SIGTERM, False),  # kill -TERM -<pgid>
        ("runner", signal.SIGTERM, False),
        ("group", signal.SIGTERM, True),  # downloads that would not end: the worker is stopped by force
    ],
)
def test_a_stop_signal_stops_everything_and_leaves_nothing_claimed(
    tmp_path: Path, image_server: ImageServer, target: str, signum: int, slow_host: bool
) -> None:
    stack = Stack(tmp_path, {"IMAGE_LEASE_SECONDS": "3600"})
    stack.migrate()
    log = stack.log_path("runstack").open("wb")
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--concurrency=2", "--web-workers=1"],
        cwd=REPO,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a group of its own, as `make run` in a terminal
    )
    stack.processes["runstack"] = runner
    gate = threading.Event()
    try:
        stack.wait_healthy()
        prefix = uuid.uuid4().hex
        urls = [image_server.add(f"{prefix}/{n}.jpg", photo((64, 48), "JPEG"), gate=gate) for n in range(4)]
        code, accepted = stack.upload(csv_of(urls))
        assert code == 202, accepted
        request_id = accepted["request_id"]
        wait_for(lambda: any(s == "running" for _, s, _ in image_states(stack, request_id)), "a claim", stack)
        expected = worker_environment(stack.env).get("GLIBC_TUNABLES") or ""
        tunables = worker_tunables(tmp_path)
        assert tunables and all(t and expected.startswith(t) for t in tunables), (
            f"the worker and its pool processes start with malloc's options (config/celery.py): {tunables}"
        )

        if target == "group":
            os.killpg(runner.pid, signum)
        else:
            runner.send_signal(signum)
        if not slow_host:
            gate.set()  # the batch in hand can finish during the warm shutdown
        assert runner.wait(timeout=120) == 0, stack.logs()
    finally:
        gate.set()
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()

    output = stack.log_path("runstack").read_text()
    assert "Stopped." in output, output[-3000:]
    assert processes_of(tmp_path) == [], "no process of the stack is left"
    states = image_states(stack, request_id)
    assert not [s for s in states if s[1] == "running"], f"nothing left claimed: {states}"
    if slow_host:
        assert "stopped worker by force" in output and "images held are queued again" in output
        assert {status for _, status, _ in states} == {"queued"}
    # The signal reached runstack alone: no pool process was killed by it (which hung billiard's
    # shutdown when one held the pool's queue lock); the worker was stopped warm.
    assert "worker: Warm shutdown" in output
    assert "exited with 'signal" not in output, output[-3000:]
