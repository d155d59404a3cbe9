"""Processing images: what an input may be, the outputs' look, attempts, batches and throughput."""

from __future__ import annotations

import math
import re

from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int, env_str
from config.settings.fetching import FETCH_CONNECT_TIMEOUT, FETCH_TOTAL_TIMEOUT
from config.settings.workers import (
    CELERY_TASK_SOFT_TIME_LIMIT,
    CELERY_WORKER_CONCURRENCY,
    CELERY_WORKER_PREFETCH_MULTIPLIER,
    usable_cores,
)

IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 50_000_000, minimum=1)
IMAGE_MAX_FRAMES = env_int("IMAGE_MAX_FRAMES", 200, minimum=1)
IMAGE_MAX_ATTEMPTS = env_int("IMAGE_MAX_ATTEMPTS", 5, minimum=1)
# The most time an image's downloads may take over all its attempts: each attempt gets what is left
# (at most FETCH_TOTAL_TIMEOUT), and an image with less left than FETCH_CONNECT_TIMEOUT fails. The
# default, 1.5 x FETCH_TOTAL_TIMEOUT, gives a host that never finishes its answer one full attempt and
# half of another (a body that outlasts the deadline is not tried again: it would be as slow).
IMAGE_TOTAL_BUDGET = env_float("IMAGE_TOTAL_BUDGET", 1.5 * FETCH_TOTAL_TIMEOUT)
if IMAGE_TOTAL_BUDGET < FETCH_CONNECT_TIMEOUT:
    raise ImproperlyConfigured(
        f"IMAGE_TOTAL_BUDGET={IMAGE_TOTAL_BUDGET:g} is shorter than "
        f"FETCH_CONNECT_TIMEOUT={FETCH_CONNECT_TIMEOUT:g}: no download could even connect"
    )
# What transparent pixels become in a JPEG output (which has no alpha): "#rrggbb".
_background = env_str("IMAGE_BACKGROUND", "#ffffff")
if not re.fullmatch(r"#[0-9a-fA-F]{6}", _background):
    raise ImproperlyConfigured(f"IMAGE_BACKGROUND={_background!r} must be a colour like #ffffff")
# The pages' "before" pictures (sansio.images._preview): the encoder's input fitted in this many px,
# stored beside each output (about 1 ms and 25-50 KB an image). 0: none, the pages show outputs only.
IMAGE_PREVIEW_SIZE = env_int("IMAGE_PREVIEW_SIZE", 640, minimum=0, maximum=4096)
IMAGE_BACKGROUND = (
    int(_background[1:3], 16),
    int(_background[3:5], 16),
    int(_background[5:7], 16),
)
IMAGE_LEASE_SECONDS = env_int("IMAGE_LEASE_SECONDS", 300, minimum=10)
# Images per task: claimed in one UPDATE, their outcomes written in one transaction. In each worker
# process, IMAGE_DOWNLOADS threads download (and store) while at most IMAGE_TRANSFORMS of them decode
# and encode: the network waits overlap, and the cores are not oversubscribed. Measured with
# `make bench` on 2 cores (service / plain Pillow loop): 4 images, 4 threads each doing both: 0.65;
# 16 images, 8 downloads, 2 transforms: 0.76; 2 downloads: 0.75; 32 images: 0.74. With one pool
# process more than cores (CELERY_WORKER_CONCURRENCY, settings/workers.py), one transform each does
# best: 0.79-0.84 against 0.77-0.83 for a process per core with two (3 paired runs).
# Far hosts (300 ms to first byte, make bench, 400 images, 2 loaded cores): 16 images and 8 downloads
# gave 0.50 of the plain loop, 6 processes of 32 and 32 gave 0.66, 3 processes of 64 and 64 gave 0.77
# (peak memory 803 MB against 693 MB): set 64 and 64 for far hosts. The defaults stay what the local
# host measured best with (64-image batches leave cores idle at a request's end: 0.84 and 0.62 against
# 0.94 and 0.70, pairs in turn on loaded cores).
IMAGE_BATCH_SIZE = env_int("IMAGE_BATCH_SIZE", 16, minimum=1, maximum=256)
IMAGE_DOWNLOADS = env_int("IMAGE_DOWNLOADS", 8, minimum=1, maximum=256)
IMAGE_TRANSFORMS = env_int("IMAGE_TRANSFORMS", 1, minimum=1, maximum=64)
# Batches sent and not yet settled, over all workers (catalog/services/dispatching.py): the rest wait
# in the database and are sent round-robin between requests as room frees, so the broker stays small
# and a small request waits for these, not for a big one's backlog. Default: twice what one worker's
# processes hold (concurrency x prefetch); raise it with the number of workers.
IMAGE_BATCHES_IN_FLIGHT = env_int(
    "IMAGE_BATCHES_IN_FLIGHT", 2 * CELERY_WORKER_CONCURRENCY * CELERY_WORKER_PREFETCH_MULTIPLIER, minimum=1
)
# Bytes of downloaded images held at once by a machine's worker processes (each its share): a
# download waits for room, so slow hosts can have many downloads in flight without memory growing.
IMAGE_DOWNLOAD_MEMORY = env_int("IMAGE_DOWNLOAD_MEMORY", 256 * 1024 * 1024, minimum=1024 * 1024)
# Transforms at once over all the worker processes sharing VAR_DIR (a machine): its cores.
IMAGE_MACHINE_TRANSFORMS = env_int("IMAGE_MACHINE_TRANSFORMS", usable_cores(), minimum=1)
# A batch whose every host is slow takes ceil(batch / downloads) rounds of the fetch deadline: that
# must fit in the soft limit, or such a batch would be cut every time and never finish.
_slowest_batch = math.ceil(IMAGE_BATCH_SIZE / IMAGE_DOWNLOADS) * FETCH_TOTAL_TIMEOUT
if _slowest_batch >= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"IMAGE_BATCH_SIZE={IMAGE_BATCH_SIZE} at IMAGE_DOWNLOADS={IMAGE_DOWNLOADS} can take "
        f"{_slowest_batch:g} s of downloads (FETCH_TOTAL_TIMEOUT={FETCH_TOTAL_TIMEOUT:g} each), not under "
        f"CELERY_TASK_SOFT_TIME_LIMIT={CELERY_TASK_SOFT_TIME_LIMIT}: use smaller batches or more downloads"
    )
