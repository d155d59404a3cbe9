"""`manage.py runstack`: the web server and a Celery worker in the foreground until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


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
            "--threads=4",
            "--access-logfile=-",
            "--graceful-timeout=10",
        ]
        worker = [
            os.path.join(bin_dir, "celery"),
            "--app=config",
            "worker",
            "--beat",  # the reconciler's schedule; run it on exactly one worker when scaling out
            f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            "--queues=images,control",
            f"--concurrency={options['concurrency']}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        self.stdout.write(
            f"Serving on http://{address}/ with {options['concurrency']} worker processes. Ctrl-C stops."
        )
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
