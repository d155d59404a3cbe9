"""Celery workers: pool size, prefetch, task time limits, queues and the beat's schedule."""

from __future__ import annotations

import os

from config.env import env_bool, env_float, env_int
from config.settings.core import VAR_DIR


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Each process keeps a few small batches in hand, so it never waits on a broker poll between two
# (measured: 68 -> 164 images/s end to end on the embedded broker). Held messages of a killed worker
# come back from the broker, or from the reconciler; they were never claimed, so never run twice.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4, minimum=1)
# Pool processes: one per core this process may run on (a command line's --concurrency still wins).
# There was one more, to transform while another claimed or settled its batch; a process now claims
# and settles in threads of its own while it transforms (catalog/batchpipeline.py), and the third
# process on 2 cores only took turns on them: 1.81 of 2 cores busy against 1.87 with two, 1.94 with two
# each on a core of its own (WORKER_PIN_PROCESSES below; `python -m bench pipeline`, 30 November).
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", usable_cores(), minimum=1)
# With as many pool processes as cores, each runs on a core of its own (config/celery.py): the kernel
# otherwise moves a transform between cores mid-image and leaves one idle now and then. Nothing is
# pinned when the counts differ (a --concurrency of another size). A container limited by a CPU quota
# but not a cpuset sees all of the host's cores, and so runs (and pins) a process on each: give it
# CELERY_WORKER_CONCURRENCY equal to its quota, or WORKER_PIN_PROCESSES=false.
WORKER_PIN_PROCESSES = env_bool("WORKER_PIN_PROCESSES", True)
# How often a worker looks for claims of its pool processes that died (released at once, not a lease later).
CLAIM_CHECK_SECONDS = env_float("CLAIM_CHECK_SECONDS", 2.0)
CELERY_TASK_IGNORE_RESULT = True  # status comes from our tables, never a result backend
CELERY_RESULT_BACKEND = None
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "images"
CELERY_TASK_ROUTES = {
    "catalog.tasks.process_images": {"queue": "images"},
    "catalog.tasks.*": {"queue": "control"},
}

RECONCILE_INTERVAL_SECONDS = env_float("RECONCILE_INTERVAL_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE = {
    "reconcile": {"task": "catalog.tasks.reconcile", "schedule": RECONCILE_INTERVAL_SECONDS},
}
# Retention: requests completed more than this many days ago go, with their result CSVs and the outputs
# no kept request uses (catalog/services/retention.py), checked hourly. 0: keep everything.
RETENTION_DAYS = env_int("RETENTION_DAYS", 0)
if RETENTION_DAYS:
    CELERY_BEAT_SCHEDULE["purge"] = {"task": "catalog.tasks.purge_expired", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
