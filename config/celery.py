"""The Celery application; its settings are the CELERY_* names in config/settings/ (broker.py, workers.py)."""

import ctypes
import gc
import logging
import os
from collections.abc import Mapping
from typing import Any

import billiard.process
from celery import Celery
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from kombu.transport import TRANSPORT_ALIASES
from PIL import _imaging as pillow_core

from config import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
logger = logging.getLogger(__name__)

# Our transports (config/broker.py) under names of their own, which settings use: Celery's banner and
# logs then read "catalog-files://localhost//" rather than "config.broker:Transport://:**@localhost//".
# Registered here because every process imports this module before it connects (config/__init__.py).
TRANSPORT_ALIASES["catalog-files"] = "config.broker:Transport"
TRANSPORT_ALIASES["catalog-redis"] = "config.broker:RedisTransport"

app = Celery("catalogue")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Pillow hands each image's memory back to the system and faults fresh pages in for the next one.
# Keeping a few freed blocks per worker process for reuse cut the pool's kernel time by half and gave
# ~7% more images per second end to end (python -m bench pipeline); Pillow's own variable overrides.
PILLOW_BLOCKS_KEPT = 16


# glibc returns large freed buffers to the kernel, and the image threads each get their own arena, so
# every image's download, copies and encoded output (megabytes) were faulted in afresh: ~260 minor page
# faults an image. Keeping buffers under 16 MB in the heap, trimming it only past 128 MB, and two arenas
# for the threads: 9 faults an image, and 0.75-0.78 -> 0.78-0.81 of the plain loop end to end (`make
# bench` inputs, 2 runs each; the same options from the environment measured the same).
# An operator's own MALLOC_* or GLIBC_TUNABLES settings are left alone.
MALLOC_OPTIONS = {  # name: (its number in glibc's malloc.h, value)
    "M_ARENA_MAX": (-8, 2),
    "M_MMAP_THRESHOLD": (-3, 16 << 20),
    "M_TRIM_THRESHOLD": (-1, 128 << 20),
}

# The same options as glibc tunables, for whatever starts a worker to put in its environment
# (manage.py runstack, docker-compose.yml, the tests' and benches' stack: worker_environment), with one
# mallopt cannot set: hugetlb=1, the heap's growth advised to the kernel as transparent huge pages
# (where /sys/kernel/mm/transparent_hugepage/enabled is madvise or always). glibc reads them when the
# worker starts, and its pool processes inherit them. The downloads' bodies were received into freshly
# faulted pages, zeroed by the kernel first: 3.4% of the pool's CPU. On 2 cores, 1,000 local images
# (runs in turn): 68.9, 70.4, 69.8 images/s with it, 58.9, 63.1, 70.4 without; the pool's system time
# 0.6-0.7 ms an image a process, against 1.3-1.6 (30 November).
MALLOC_TUNABLES = ":".join(
    [
        f"glibc.malloc.arena_max={MALLOC_OPTIONS['M_ARENA_MAX'][1]}",
        f"glibc.malloc.mmap_threshold={MALLOC_OPTIONS['M_MMAP_THRESHOLD'][1]}",
        f"glibc.malloc.trim_threshold={MALLOC_OPTIONS['M_TRIM_THRESHOLD'][1]}",
        "glibc.malloc.hugetlb=1",
    ]
)


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a worker process to start with: MALLOC_TUNABLES, unless malloc's options are
    the operator's own (a MALLOC_* variable or GLIBC_TUNABLES)."""
    if _operator_malloc(environ):
        return dict(environ)
    return {**environ, "GLIBC_TUNABLES": MALLOC_TUNABLES}


def _operator_malloc(environ: Mapping[str, str]) -> bool:
    return any(name.startswith("MALLOC_") or name == "GLIBC_TUNABLES" for name in environ)


@worker_process_init.connect
def _prepare_pool_process(**kwargs: Any) -> None:
    reuse_image_memory()
    pin_to_own_core()


def reuse_image_memory() -> None:
    """Pillow's and glibc's memory kept for the next image, in a worker process before its first one
    (and in `python -m bench imagepath`'s, which measure the worker's path)."""
    if "PILLOW_BLOCKS_MAX" not in os.environ:
        pillow_core.set_blocks_max(PILLOW_BLOCKS_KEPT)
    if not _operator_malloc(os.environ):  # GLIBC_TUNABLES from worker_environment: already in effect
        _tune_malloc()


# The worker's pool size, noted in its main process (worker_init) for the pool processes it forks.
_pool_size: int | None = None


def pin_to_own_core() -> None:
    """In a pool process: run on the worker's core of the same index, when the worker has exactly one
    core per pool process (WORKER_PIN_PROCESSES; config/settings/workers.py says why). A process that
    replaces a dead one takes its index, so its core."""
    from django.conf import settings  # noqa: PLC0415 - configured by the time a pool process starts

    if not settings.WORKER_PIN_PROCESSES or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    index = getattr(billiard.process.current_process(), "index", None)
    if _pool_size != len(cores) or not isinstance(index, int) or not 0 <= index < len(cores):
        return
    os.sched_setaffinity(0, {cores[index]})


def _tune_malloc() -> None:
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return  # not glibc (macOS, musl): nothing to tune
    for name, (option, value) in MALLOC_OPTIONS.items():
        if mallopt(option, value) != 1:
            logger.warning("mallopt(%s, %d) was refused", name, value)


@worker_ready.connect
def _serve_metrics(**kwargs: Any) -> None:
    # Imported here: catalog needs Django's apps loaded, which they are once the worker is ready.
    from catalog.metrics_http import serve_worker_metrics  # noqa: PLC0415

    serve_worker_metrics()


@worker_init.connect
def _freeze_inherited_objects(**kwargs: Any) -> None:
    """Before the pool processes are forked: what the main process has made so far (Django, the
    apps, every module) is left out of the garbage collector's passes. Else a pool process's full
    collections write to each inherited object's header, so the kernel copies every page of them
    (copy-on-write): under perf, 1.1% of the pool's CPU on 1,000 local images went to copying pages
    in gc_collect_main (the Python docs recommend gc.freeze() before fork for this)."""
    gc.freeze()


# Claims of processes known to be gone are released at once (catalog/workers.py). Imported in each
# handler: catalog needs Django's apps, loaded by the time the worker starts.
@worker_init.connect
def _note_main_process(sender: Any, **kwargs: Any) -> None:
    global _pool_size  # noqa: PLW0603 - the main process's one fact for the processes it forks
    concurrency = getattr(sender, "concurrency", None)
    _pool_size = concurrency if isinstance(concurrency, int) else None
    from catalog import workers  # noqa: PLC0415

    workers.note_main_process()


@worker_ready.connect
def _recover_claims(sender: Any, **kwargs: Any) -> None:
    from catalog import workers  # noqa: PLC0415

    workers.on_ready(sender)


# Sent by the worker's signal handler in its main process as a warm stop begins.
@worker_shutting_down.connect
def _stop_taking_messages(**kwargs: Any) -> None:
    broker.stop_waiting()


@worker_shutdown.connect
def _release_claims(sender: Any, **kwargs: Any) -> None:
    from catalog import workers  # noqa: PLC0415

    workers.release_at_shutdown(sender.hostname)


# A pool process's tasks return while their batches still run (catalog/batchpipeline.py): on a warm
# stop it lets them settle before it exits, as it would have finished a task it was running.
@worker_process_shutdown.connect
def _finish_batches(**kwargs: Any) -> None:
    from catalog import workerresources  # noqa: PLC0415

    workerresources.finish_batches()
