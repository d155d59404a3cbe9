"""The Celery application; its settings are the CELERY_* names in config/settings.py."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready
from PIL import _imaging as pillow_core

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("catalogue")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Pillow hands each image's memory back to the system and faults fresh pages in for the next one.
# Keeping a few freed blocks per worker process for reuse cut the pool's kernel time by half and gave
# ~7% more images per second end to end (python -m bench pipeline); Pillow's own variable overrides.
PILLOW_BLOCKS_KEPT = 16


@worker_process_init.connect
def _reuse_image_memory(**kwargs: Any) -> None:
    if "PILLOW_BLOCKS_MAX" not in os.environ:
        pillow_core.set_blocks_max(PILLOW_BLOCKS_KEPT)


@worker_ready.connect
def _serve_metrics(**kwargs: Any) -> None:
    # Imported here: catalog needs Django's apps loaded, which they are once the worker is ready.
    from catalog.metrics import serve_worker_metrics  # noqa: PLC0415

    serve_worker_metrics()
