"""Celery: the broker, the workers' pools, time limits, queues and the reconciler's schedule."""

from __future__ import annotations

import math
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int, env_str
from config.settings.environment import VAR_DIR
from config.settings.processing import (
    FETCH_TOTAL_TIMEOUT,
    IMAGE_BATCH_SIZE,
    IMAGE_DOWNLOADS,
    RECONCILE_INTERVAL_SECONDS,
)

# --- Celery ---------------------------------------------------------------------------------------
# The embedded default is kombu's filesystem transport: no server to install. It can drop a message
# in flight when a worker dies; the database stays the record of what is left and the reconciler
# re-queues it.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # kombu's, with whole messages (see there)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "doorbell_folder": str(BROKER_DIR / "doorbells"),  # see config/doorbell.py
        "store_processed": False,
        # Consumers wait on a doorbell that every put and ack rings (config/doorbell.py): an 8-image
        # request completes in a median 41 ms from upload, against 144 ms when they slept 50 ms between
        # looks. The interval is only the fallback for a missed ring; 0.5 s keeps an idle worker at
        # 0.10% of a core (0.50% at 0.05 s).
        "polling_interval": env_float("BROKER_POLLING_INTERVAL", 0.5),
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Unacked tasks come back after this long: longer than any task may run (hard limit below).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if CELERY_BROKER_URL.startswith("redis://"):  # rediss:// keeps kombu's own, which sets up TLS
        CELERY_BROKER_TRANSPORT = "config.broker:RedisTransport"  # survives a lost connection (see there)
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran, so a killed worker's task comes back
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each process keeps a few small batches in hand, so it never waits on a broker poll between two
# (measured: 68 -> 164 images/s end to end on the embedded broker). Held messages of a killed worker
# come back from the broker, or from the reconciler; they were never claimed, so never run twice.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4, minimum=1)
# Pool processes: one per core this process may run on, plus one that transforms while another claims
# or settles its batch (a command line's --concurrency still wins).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", _CORES + 1, minimum=1)
CELERY_TASK_IGNORE_RESULT = True  # status comes from our tables, never a result backend
CELERY_RESULT_BACKEND = None
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
# A batch whose every host is slow takes ceil(batch / downloads) rounds of the fetch deadline: that
# must fit in the soft limit, or such a batch would be cut every time and never finish.
_slowest_batch = math.ceil(IMAGE_BATCH_SIZE / IMAGE_DOWNLOADS) * FETCH_TOTAL_TIMEOUT
if _slowest_batch >= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"IMAGE_BATCH_SIZE={IMAGE_BATCH_SIZE} at IMAGE_DOWNLOADS={IMAGE_DOWNLOADS} can take "
        f"{_slowest_batch:g} s of downloads (FETCH_TOTAL_TIMEOUT={FETCH_TOTAL_TIMEOUT:g} each), not under "
        f"CELERY_TASK_SOFT_TIME_LIMIT={CELERY_TASK_SOFT_TIME_LIMIT}: use smaller batches or more downloads"
    )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "images"
CELERY_TASK_ROUTES = {
    "catalog.tasks.process_images": {"queue": "images"},
    "catalog.tasks.*": {"queue": "control"},
}
CELERY_BEAT_SCHEDULE = {
    "reconcile": {"task": "catalog.tasks.reconcile", "schedule": RECONCILE_INTERVAL_SECONDS},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
