"""The service as separate real processes (migrate, gunicorn, Celery workers) for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from config.celery import worker_environment

REPO = Path(__file__).resolve().parents[2]
# Variables a developer's shell may have set that must not leak into a test stack.
_SCRUBBED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "PUBLIC_BASE_URL",
    "REQUIRE_AUTH",
    "SECRET_KEY",  # a stack makes its own development secrets under its VAR_DIR
    "WEBHOOK_SECRET",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http: urllib3.PoolManager = field(
        default_factory=lambda: urllib3.PoolManager(timeout=30.0, retries=False)
    )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            APP_ENV="development",
            VAR_DIR=str(self.root / "var"),
            PORT=str(self.port),
            FETCH_ALLOWED_PRIVATE_NETWORKS="127.0.0.1/32",
            RECONCILE_INTERVAL_SECONDS="2",
            WEBHOOK_RETRY_BASE_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    @property
    def webhook_secret(self) -> str:
        """The key this stack signs webhooks with: made by its first process (config/machine_secrets.py)."""
        return (self.root / "var" / "secrets" / "webhook-secret").read_text().strip()

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = self.log_path(name).open("ab")
        proc = subprocess.Popen(
            args, cwd=REPO, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = proc
        return proc

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start_web(self) -> None:
        args = [sys.executable, "-m", "gunicorn", "config.wsgi", f"--bind=127.0.0.1:{self.port}"]
        args += ["--workers=2", "--threads=4", "--access-logfile=-", "--graceful-timeout=5"]
        self._spawn("web", args)
        self.wait_healthy()

    def start_worker(self, name: str = "worker", *, concurrency: int | None = 2, beat: bool = True) -> None:
        """``concurrency=None``: the worker's own default (CELERY_WORKER_CONCURRENCY)."""
        args = [sys.executable, "-m", "celery", "--app=config", "worker", f"--hostname={name}@%h"]
        args += [f"--concurrency={concurrency}"] if concurrency is not None else []
        args += ["--queues=images,control", "--loglevel=INFO"]
        args += ["--without-gossip", "--without-mingle"]
        if beat:
            args += ["--beat", f"--schedule={self.root / 'beat-schedule'}"]
        self._spawn(name, args, worker_environment(self.env))  # as runstack starts it

    def wait_worker_ready(self, name: str, timeout: float = 60) -> None:
        """Until the worker says it consumes (Celery logs "<hostname> ready.")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_path(name).read_text(errors="replace"):
                return
            if self.processes[name].poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker {name} not ready after {timeout}s\n{self.logs()}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group: a worker's pool children die with it."""
        proc = self.processes[name]
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM to each main process, as a container's stop or runstack sends it: a worker stops
        its own pool. (To the whole group, a pool process killed holding the pool's queue lock hung
        the worker's shutdown until the SIGKILL below, 15 s: celery/billiard#457.) Then anything
        left of each group is killed."""
        for proc in self.processes.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def logs(self, tail: int = 60) -> str:
        parts = []
        for name in self.processes:
            lines = self.log_path(name).read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {name} ---\n" + "\n".join(lines))
        return "\n".join(parts)

    # --- talking to it like a client -----------------------------------------------------------

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                resp = self.http.request("GET", f"{self.base_url}/healthz")
                if resp.status == 200:
                    return dict(json.loads(resp.data))
                last = resp.data
            except urllib3.exceptions.HTTPError as exc:
                last = exc
            time.sleep(0.3)
        raise AssertionError(f"web server not healthy after {timeout}s: {last!r}\n{self.logs()}")

    def upload(
        self, csv: bytes, filename: str = "catalogue.csv", **fields: str
    ) -> tuple[int, dict[str, Any]]:
        form: dict[str, Any] = {"file": (filename, csv, "text/csv"), **fields}
        resp = self.http.request("POST", f"{self.base_url}/api/upload/", fields=form)
        return resp.status, json.loads(resp.data)

    def status(self, request_id: str) -> dict[str, Any]:
        resp = self.http.request("GET", f"{self.base_url}/api/status/", fields={"request_id": request_id})
        assert resp.status == 200, resp.data
        return dict(json.loads(resp.data))

    def wait_complete(self, request_id: str, timeout: float = 120, poll: float = 0.25) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen: list[int] = []
        while time.monotonic() < deadline:
            status = self.status(request_id)
            seen.append(status["progress"]["percent"])
            if status["completed"]:
                status["_percent_seen"] = seen
                return status
            time.sleep(poll)
        raise AssertionError(f"request {request_id} not complete after {timeout}s: {status}\n{self.logs()}")

    def wait_status(
        self, request_id: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        """Poll the status until `condition` holds for it; fail with the last one seen."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(request_id)
            if condition(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"status never matched in {timeout}s: {status}\n{self.logs()}")
            time.sleep(0.2)

    def wait_reconciled(self, name: str = "worker1", timeout: float = 120) -> None:
        """Until the reconciler has run a whole pass that began after this call (its worker's log says
        so): whatever it would re-send has been re-sent by then."""
        finished = re.compile(r"Task catalog\.tasks\.reconcile\[([0-9a-f-]+)\] succeeded")
        received = re.compile(r"Task catalog\.tasks\.reconcile\[([0-9a-f-]+)\] received")
        before = set(received.findall(self.log_path(name).read_text(errors="replace")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log_path(name).read_text(errors="replace")
            if set(finished.findall(log)) & (set(received.findall(log)) - before):
                return
            time.sleep(0.2)
        raise AssertionError(f"no reconciler pass within {timeout}s\n{self.logs()}")

    def wait_tasks_done(self, task_ids: Iterable[str], name: str = "worker1", timeout: float = 120) -> None:
        """Until the worker's log says each of these tasks ran to its end."""
        waiting = set(task_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log_path(name).read_text(errors="replace")
            waiting = {task for task in waiting if f"[{task}] succeeded" not in log}
            if not waiting:
                return
            time.sleep(0.2)
        raise AssertionError(f"tasks {sorted(waiting)} not done within {timeout}s\n{self.logs()}")

    def get(self, url: str) -> urllib3.BaseHTTPResponse:
        return self.http.request("GET", url)

    def read_database(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` read from this stack's SQLite database (the embedded default), read-only,
        beside its processes."""
        path = self.root / "var" / "db.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute(sql, params).fetchall()
