"""`manage.py runstack`: the web server and a Celery worker in the foreground until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from catalog import services
from catalog.management.commands.submit import pasteable_path
from config.celery import worker_environment


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn) and a Celery worker with the reconciler's schedule; Ctrl-C stops both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=settings.CELERY_WORKER_CONCURRENCY,
            help="worker processes (default: one per core)",
        )
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")

    def handle(self, *args: Any, **options: Any) -> None:
        bin_dir = os.path.dirname(sys.executable)
        address = f"{settings.HOST}:{settings.PORT}"
        web = [
            os.path.join(bin_dir, "gunicorn"),
            "config.wsgi",
            f"--bind={address}",
            f"--workers={options['web_workers']}",
            "--threads=4",  # no --access-logfile: catalog.http logs each call once, with its request id
            "--graceful-timeout=4",
        ]
        node = f"celery@{socket.gethostname()}"
        worker = [
            os.path.join(bin_dir, "celery"),
            "--app=config",
            "--quiet",  # no banner: ours below says what it would, in words
            "worker",
            f"--hostname={node}",  # named here too: its claims are released by this name when it stops
            "--beat",  # the reconciler's schedule; run it on exactly one worker when scaling out
            f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            "--queues=images,control",
            f"--concurrency={options['concurrency']}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        self.stdout.write(banner(address, options["concurrency"]))
        # Every process of the last run is gone: their metric files (a set per pid) would pile up run
        # after run, and every scrape reads them all. Counters starting again at 0 is what Prometheus expects.
        for stale in settings.METRICS_DIR.glob("*.db"):
            stale.unlink(missing_ok=True)
        # Each child in its own session: a signal to our process group (Ctrl-C, `kill -TERM -<pgid>`)
        # reaches only us, and we stop the children in order. Sent to the worker's pool processes too,
        # it killed one holding the pool's queue lock and billiard's shutdown hung until SIGKILL.
        web_process = subprocess.Popen(web, start_new_session=True)  # noqa: S603 - our own binaries
        worker_env = worker_environment(os.environ)  # malloc's options, read by glibc at its start
        worker_process = subprocess.Popen(worker, start_new_session=True, env=worker_env)  # noqa: S603
        children = {"web": web_process, "worker": worker_process}
        stopping: list[int] = []

        def stop(signum: int, frame: object) -> None:
            stopping.append(signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)
        while not stopping and all(child.poll() is None for child in children.values()):
            time.sleep(0.2)
        for child in children.values():  # both at once: each finishes what it has in hand meanwhile
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        forced = [name for name, child in children.items() if not _stopped(child, deadline)]
        # Whatever its processes still held (a forced stop) is queued again now, not a lease later.
        released = services.release_claims_of_node(node)
        if forced or released:
            by_force = " and ".join(forced) or "nothing"
            self.stderr.write(f"stopped {by_force} by force; {released} images held are queued again")
        if not stopping:
            exited = [name for name, child in children.items() if child.returncode]
            raise SystemExit(f"stopped because the {' and '.join(exited) or 'child'} process exited")
        self.stdout.write("Stopped.")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A warm shutdown: gunicorn finishes its requests, the worker its batches (a second or two each, more
# on a loaded machine; one waiting on slow image hosts is cut, and its images are released above).
GRACE_SECONDS = 10.0


def _stopped(child: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for a child told to stop; past the deadline, kill its whole session (pool processes too).

    Returns whether it stopped by itself.
    """
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=max(0.0, deadline - time.monotonic()))
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # its own process group: its pool processes too
    child.wait()
    return False


def banner(address: str, concurrency: int) -> str:
    """Where the service listens and what it uses, in words (no passwords)."""
    url = f"http://{address}/"
    python = pasteable_path(Path(sys.executable))
    lines = [
        f"Catalogue images ({settings.APP_ENV}) on {url}",
        f"  pages {url}   API docs {url}api/docs/   admin {url}admin/",
        f"  database: {_database()}",
        f"  broker:   {_broker()}",
        f"  storage:  {_storage()}",
        f"  worker:   {concurrency} process{'es' if concurrency != 1 else ''}"
        " (images and control queues, the reconciler's schedule)",
        "Ctrl-C stops the web server and the worker.",
    ]
    if settings.SAMPLE_IMAGES:  # the sample catalogue is served in development only
        lines.insert(
            -1,
            f"First time? Keep this running; in another shell: APP_ENV=development {python} manage.py demo",
        )
    return "\n".join(lines)


def _database() -> str:
    db = settings.DATABASES["default"]
    if "sqlite" in db["ENGINE"]:
        return f"SQLite, file {db['NAME']}"
    where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
    return f"PostgreSQL, database {db.get('NAME')} at {where}"


def _broker() -> str:
    url = urlsplit(settings.CELERY_BROKER_URL)
    if url.scheme == "filesystem":
        return f"embedded, files under {settings.BROKER_DIR}"
    kind = {"redis": "Redis", "rediss": "Redis (TLS)", "amqp": "RabbitMQ", "amqps": "RabbitMQ (TLS)"}
    return f"{kind.get(url.scheme, url.scheme)} at {url.hostname}:{url.port or 'default port'}"


def _storage() -> str:
    if settings.AWS_STORAGE_BUCKET_NAME:
        endpoint = settings.STORAGES["default"]["OPTIONS"]["endpoint_url"] or "AWS"
        return f"S3 bucket {settings.AWS_STORAGE_BUCKET_NAME} at {endpoint}"
    return f"local folder {settings.MEDIA_ROOT}"
