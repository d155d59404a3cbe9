"""`manage.py runstack`: the web server and a Celery worker in the foreground until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from catalog.management.commands.submit import pasteable_path


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn) and a Celery worker with the reconciler's schedule; Ctrl-C stops both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=settings.CELERY_WORKER_CONCURRENCY,
            help="worker processes (default: one per core, plus one)",
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
            "--graceful-timeout=10",
        ]
        worker = [
            os.path.join(bin_dir, "celery"),
            "--app=config",
            "--quiet",  # no banner: ours below says what it would, in words
            "worker",
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
        children = [subprocess.Popen(web), subprocess.Popen(worker)]  # noqa: S603 - our own binaries
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if not stopping:
            names = ("web", "worker")
            exited = [name for name, child in zip(names, children, strict=True) if child.returncode]
            raise SystemExit(f"stopped because the {' and '.join(exited) or 'child'} process exited")


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
