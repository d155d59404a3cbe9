"""The Celery broker (the CELERY_BROKER_* names) and when a task is acknowledged.

The embedded default is kombu's filesystem transport: no server to install. It can drop a message in
flight when a worker dies; the database stays the record of what is left and the reconciler re-queues
it. Its folders are made at process start (config/startup.py), not by reading settings.
"""

from __future__ import annotations

from typing import Any

from config.env import env_float, env_str
from config.settings.core import VAR_DIR

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "catalog-files"  # config.broker:Transport: whole messages (see there)
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
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Unacked tasks come back after this long: longer than any task may run (settings/workers.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if CELERY_BROKER_URL.startswith("redis://"):  # rediss:// keeps kombu's own, which sets up TLS
        CELERY_BROKER_TRANSPORT = "catalog-redis"  # config.broker:RedisTransport: survives a lost connection
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran, so a killed worker's task comes back
CELERY_TASK_REJECT_ON_WORKER_LOST = True
