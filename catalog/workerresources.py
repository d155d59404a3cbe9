"""What a worker process makes once and keeps for every task it runs (each made on first use)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from django.conf import settings

from catalog.batchpipeline import BatchPipeline
from catalog.downloadwindow import DownloadWindow
from catalog.fetch import Fetcher, fetcher_from_settings
from catalog.machineslots import MachineSlots, ProcessThenMachine
from catalog.models import ContentOutput
from catalog.services import reuse

logger = logging.getLogger(__name__)

T = TypeVar("T")


def once(make: Callable[[], T]) -> Callable[[], T]:
    """``make()`` once per process, however many threads ask at the same time: a process's first
    batches start together, each in its own thread (catalog/batchpipeline.py), and functools.cache
    let each of them make its own fetcher, image threads and transform slot (so more threads and
    transforms than the settings say, and a host's connections in several pools)."""
    lock = threading.Lock()
    made: list[T] = []

    @functools.wraps(make)
    def get() -> T:
        if not made:
            with lock:
                if not made:
                    made.append(make())
        return made[0]

    return get


# Threads of a worker process that read the database for its image threads (services/reuse.find_output).
# Each thread that queries keeps a connection of its own: 40 download threads in each of 4 pool
# processes opened 176 on PostgreSQL, over its 100. Their reads are one indexed row an image.
DATABASE_THREADS = 2


@once
def fetcher() -> Fetcher:
    """One pooled client per process (a worker's; the web's for its before pictures,
    services/previews.py), so downloads from one host reuse connections."""
    return fetcher_from_settings()


@once
def image_threads() -> ThreadPoolExecutor:
    """Per worker process: a batch's downloads overlap, and Pillow releases the GIL while it works."""
    return ThreadPoolExecutor(max_workers=settings.IMAGE_DOWNLOADS, thread_name_prefix="image")


@once
def download_window() -> DownloadWindow:
    """Per worker process: how many of its images may be downloading or waiting for their transform
    (catalog/downloadwindow.py), at least IMAGE_DOWNLOAD_WINDOW and at most a thread each."""
    floor = min(settings.IMAGE_DOWNLOAD_WINDOW, settings.IMAGE_DOWNLOADS)
    return DownloadWindow(floor, settings.IMAGE_DOWNLOADS, settings.IMAGE_TRANSFORMS)


@once
def transform_slots() -> ProcessThenMachine:
    """How many threads of a worker process may decode and encode at once (IMAGE_TRANSFORMS), and how
    many of a machine's processes (IMAGE_MACHINE_TRANSFORMS): more processes than cores can then wait
    on slow hosts without more transforms than cores thrashing the caches."""
    machine = MachineSlots(Path(settings.VAR_DIR) / "slots", "transform", settings.IMAGE_MACHINE_TRANSFORMS)
    return ProcessThenMachine(threading.BoundedSemaphore(settings.IMAGE_TRANSFORMS), machine)


@once
def batch_pipeline() -> BatchPipeline:
    """Per worker process: the batches it works on at once (IMAGE_BATCHES_PER_PROCESS)."""
    return BatchPipeline(
        settings.IMAGE_BATCHES_PER_PROCESS, download_window(), room_wait=settings.IMAGE_BATCH_TIME_LIMIT
    )


@once
def _database_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=DATABASE_THREADS, thread_name_prefix="database")


def find_output(key: str) -> ContentOutput | None:
    """services/reuse.find_output, run by one of the process's few database threads."""
    return _database_threads().submit(reuse.find_output, key).result()


def finish_batches() -> None:
    """At the process's stop: let the batches in hand settle, within the batch time limit (the
    worker's own stop, e.g. runstack's, may come sooner; their claims are then released by it)."""
    if not batch_pipeline().idle(timeout=settings.IMAGE_BATCH_TIME_LIMIT):
        logger.warning("stopping with batches still running: their claims are released by the worker")
