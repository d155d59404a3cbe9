"""A worker's pool processes each on a core of its own when it has one per core (WORKER_PIN_PROCESSES).

The real worker is started and its pool processes' allowed cores read from /proc; the rule's other
cases (another pool size, the setting off) run ``config.celery.pin_to_own_core`` in a fresh
interpreter each, since it changes the affinity of the process that calls it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.stack import REPO, Stack

CORES = sorted(os.sched_getaffinity(0))


def allowed_cores(pid: int) -> set[int]:
    return os.sched_getaffinity(pid)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(n) for n in (task / "children").read_text().split()]
    return found


def test_a_worker_with_a_process_per_core_runs_each_on_a_core_of_its_own(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {})
    stack.migrate()
    try:
        stack.start_worker("worker1", concurrency=len(CORES), beat=False)
        stack.wait_worker_ready("worker1")
        main = stack.processes["worker1"].pid
        deadline = time.monotonic() + 30
        seen: dict[int, set[int]] = {}
        while time.monotonic() < deadline:
            seen = {pid: allowed_cores(pid) for pid in children(main)}
            if len(seen) == len(CORES) and all(len(cores) == 1 for cores in seen.values()):
                break
            time.sleep(0.1)
        assert len(seen) == len(CORES), f"pool processes: {seen}"
        assert sorted(core for cores in seen.values() for core in cores) == CORES, seen
        assert allowed_cores(main) == set(CORES), "the main process stays free"
    finally:
        stack.stop()


_PIN = """
import json, os, sys
import django
django.setup()
import billiard.process
import config.celery
config.celery._pool_size = int(sys.argv[1])
billiard.process.current_process().index = int(sys.argv[2])
config.celery.pin_to_own_core()
print(json.dumps(sorted(os.sched_getaffinity(0))))
"""


def pinned(pool_size: int, index: int, **env: str) -> list[int]:
    """The cores a fresh pool process of ``pool_size``, at ``index``, may use once it pinned itself."""
    environ = {**os.environ, "APP_ENV": "development", "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    out = subprocess.run(
        [sys.executable, "-c", _PIN, str(pool_size), str(index)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    cores: list[int] = json.loads(out.stdout.strip().splitlines()[-1])
    return cores


def test_each_index_takes_its_own_core() -> None:
    assert [pinned(len(CORES), index) for index in range(len(CORES))] == [[core] for core in CORES]


@pytest.mark.parametrize(
    ("pool_size", "env"),
    [
        (len(CORES) + 1, {}),  # more processes than cores: two would share one, the others idle
        (len(CORES), {"WORKER_PIN_PROCESSES": "false"}),
    ],
    ids=["another pool size", "setting off"],
)
def test_nothing_is_pinned_otherwise(pool_size: int, env: dict[str, str]) -> None:
    assert pinned(pool_size, 0, **env) == CORES
