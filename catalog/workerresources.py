"""What a worker process makes once and keeps for every task it runs (each made on first use)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from django.conf import settings

from catalog.batchpipeline import BatchPipeline
from catalog.fetch import Fetcher, fetcher_from_settings
from catalog.machineslots import MachineSlots, ProcessThenMachine


@cache
def fetcher() -> Fetcher:
    """One pooled client per worker process, so images from one host reuse connections."""
    return fetcher_from_settings()


@cache
def image_threads() -> ThreadPoolExecutor:
    """Per worker process: a batch's downloads overlap, and Pillow releases the GIL while it works."""
    return ThreadPoolExecutor(max_workers=settings.IMAGE_DOWNLOADS, thread_name_prefix="image")


@cache
def transform_slots() -> ProcessThenMachine:
    """How many threads of a worker process may decode and encode at once (IMAGE_TRANSFORMS), and how
    many of a machine's processes (IMAGE_MACHINE_TRANSFORMS): more processes than cores can then wait
    on slow hosts without more transforms than cores thrashing the caches."""
    machine = MachineSlots(Path(settings.VAR_DIR) / "slots", "transform", settings.IMAGE_MACHINE_TRANSFORMS)
    return ProcessThenMachine(threading.BoundedSemaphore(settings.IMAGE_TRANSFORMS), machine)


@cache
def batch_pipeline() -> BatchPipeline:
    """Per worker process: the batches it works on at once (IMAGE_BATCHES_PER_PROCESS)."""
    return BatchPipeline(settings.IMAGE_BATCHES_PER_PROCESS)
