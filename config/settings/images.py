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
# The comparison page's "before" pictures (sansio.images.before_picture): the encoder's input, reduced
# by a whole factor to at most this many px, made when a page first shows one and stored beside its
# output (catalog/services/previews.py). 0: none, the page shows the output only.
IMAGE_PREVIEW_SIZE = env_int("IMAGE_PREVIEW_SIZE", 1024, minimum=0, maximum=4096)
# How long a page waits for a before picture to be made: its input downloaded again, read and stored.
IMAGE_PREVIEW_TIMEOUT = env_float("IMAGE_PREVIEW_TIMEOUT", 10.0)
IMAGE_BACKGROUND = (
    int(_background[1:3], 16),
    int(_background[3:5], 16),
    int(_background[5:7], 16),
)
IMAGE_LEASE_SECONDS = env_int("IMAGE_LEASE_SECONDS", 300, minimum=10)
# Images per task: claimed in one UPDATE, their outcomes written in one transaction. In each worker
# process, IMAGE_DOWNLOADS threads download (and store) while at most IMAGE_TRANSFORMS of them decode
# and encode: the network waits overlap, and the cores are not oversubscribed. A process works on up
# to IMAGE_BATCHES_PER_PROCESS batches at once (catalog/batchpipeline.py): it claims its next batch
# and starts its downloads while the last one's images still download or transform.
# Measured with `python -m bench pipeline --only-far` on 2 cores (1,000 JPEGs of 1.2 MB from a host at
# 8 MB/s a connection; ratio to the plain Pillow loop at 0 ms / 300 ms / 1 s to first byte):
#   one batch a process, 16 images, 8 downloads:      0.60 / 0.39 / 0.16 (the cores wait on the host)
#   two batches a process, 20 images, 40 downloads:   0.61 / 0.59 / 0.48
#   three batches a process, 16 images, 40 downloads: 0.59 / 0.63 / 0.51 (3 processes; 30 November)
# With as many in flight, 300 ms costs nothing more than a host next door; what is left to the plain
# loop is the service's own CPU an image (README, far hosts), not waiting. With a process per core
# (config/settings/workers.py), two processes need more in hand each for 1 s: later on 30 November,
#   3 processes, three batches, 40 downloads (the old defaults):  0.64 / 0.63 / 0.57
#   2 processes on their own cores, three batches, 40 downloads:   0.72 / 0.69 / 0.45
#   the same, four batches, 48 downloads:                          0.66 / 0.69 / 0.58
#   the same, five batches, 64 downloads:                          0.67-0.69 / 0.69-0.71 / 0.59-0.61
# On a faster machine (the plain loop at 150-157 images/s, 30 November, second session), 1 s needed more
# in flight than 64 threads a process and 128 connections to the host: 0.55 of the plain loop. Runs of
# 1,000 images (images/s; local / 300 ms / 1 s, one run each, the plain loop ~155):
#   five batches, 64 downloads, 128 host connections:      125.3 / 124.9 / 83.8
#   eight batches, 128 downloads, 256 host connections:   128.3 / 128.9 / 107.9 (the defaults)
# (Ten batches and 160 downloads gave 114.6 at 1 s, but IMAGE_BATCHES_IN_FLIGHT, 16 batches on two
# processes, already holds them to eight each.)
# One transform a process: Pillow 13 decodes a JPEG without the GIL but encodes holding it (two threads
# encoding the bench's 800x600 output took 2.1x one thread's time), so two transforms in one process
# take turns in the encoder while a core waits. Mid-run, IMAGE_TRANSFORMS=2 kept 1.81 of 2 cores busy
# where 1 kept 1.89 (30 November); processes, not threads, give transforms their cores.
# IMAGE_DOWNLOAD_MEMORY bounds the bytes the downloads hold, FETCH_HOST_CONNECTIONS the connections
# to one host.
# 32 images a batch, not 16: a batch's claim, settling and dispatch cost the same for either, and the
# pool spent 18.2-18.6 ms of CPU an image against 18.9-19.4 (1,000 local images, 1 December). Larger
# batches had left a core idle at a request's end, and no longer do: a process takes a batch only
# when it has few images in hand (catalog/downloadwindow.py), and a request's last images go out in
# smaller batches (catalog/services/dispatching.py). Ratios to the plain loop, three runs each:
#   16 images, 16 batches in flight:  0.81, 0.81, 0.84
#   32 images, 16 batches in flight:  0.83, 0.84, 0.85
#   32 images, 8 batches in flight:   0.84, 0.85, 0.87 (the defaults: 256 images in flight, as before)
IMAGE_BATCH_SIZE = env_int("IMAGE_BATCH_SIZE", 32, minimum=1, maximum=256)
IMAGE_DOWNLOADS = env_int("IMAGE_DOWNLOADS", 128, minimum=1, maximum=256)
# Images a process has in hand before their transforms, at least (catalog/downloadwindow.py): a far
# host gets more, as many as its latency needs, up to IMAGE_DOWNLOADS.
IMAGE_DOWNLOAD_WINDOW = env_int("IMAGE_DOWNLOAD_WINDOW", 8, minimum=1, maximum=256)
IMAGE_TRANSFORMS = env_int("IMAGE_TRANSFORMS", 1, minimum=1, maximum=64)
IMAGE_BATCHES_PER_PROCESS = env_int("IMAGE_BATCHES_PER_PROCESS", 8, minimum=1, maximum=16)
# A batch is settled in one transaction when its slowest image is done; one still running after this
# many seconds (a slow or wedged host's images in it) settles what finished, then again as often, so
# good images beside a wedged host's show done in seconds, not after its read timeouts
# (`python -m bench hosts`). Local batches end sooner: one transaction each, as before.
IMAGE_SETTLE_INTERVAL = env_float("IMAGE_SETTLE_INTERVAL", 2.0, minimum=0.1)
# Downloads a process sends at once to a host that has not answered it in the last 10 minutes (a
# crawler's slow start, catalog/hostpolicy.py): that host's other images wait for its first answer, or
# for one of these to end, without holding a download thread. A host that accepts connections and
# never answers so holds these, not every thread, until its breaker opens, and other hosts' images go
# on meanwhile. Half the threads: a far host's first wave is enough to keep the cores busy until it
# answers. 0: no limit (a wedged host can take every thread until its breaker opens).
IMAGE_HOST_FIRST_DOWNLOADS = env_int(
    "IMAGE_HOST_FIRST_DOWNLOADS", max(1, IMAGE_DOWNLOADS // 2), minimum=0, maximum=IMAGE_DOWNLOADS
)
# Batches sent and not yet settled, over all workers (catalog/services/dispatching.py): the rest wait
# in the database and are sent round-robin between requests as room frees, so the broker stays small
# and a small request waits for these, not for a big one's backlog. Default: what one worker's
# processes prefetch (concurrency x prefetch; 256 images on 2 cores); raise it with the number of
# workers.
IMAGE_BATCHES_IN_FLIGHT = env_int(
    "IMAGE_BATCHES_IN_FLIGHT", CELERY_WORKER_CONCURRENCY * CELERY_WORKER_PREFETCH_MULTIPLIER, minimum=1
)
# Bytes of downloaded images held at once by a machine's worker processes (each its share): a
# download waits for room, so slow hosts can have many downloads in flight without memory growing.
IMAGE_DOWNLOAD_MEMORY = env_int("IMAGE_DOWNLOAD_MEMORY", 256 * 1024 * 1024, minimum=1024 * 1024)
# Transforms at once over all the worker processes sharing VAR_DIR (a machine): its cores.
IMAGE_MACHINE_TRANSFORMS = env_int("IMAGE_MACHINE_TRANSFORMS", usable_cores(), minimum=1)
# How long a batch may run from its claim before what it has not finished goes back to the queue
# (services.process_batch): the tasks' soft limit, and never past its claims' lease less a tenth of it
# to settle in. A batch that settled after its lease could find its images taken back by the
# reconciler or claimed by a message delivered again, and what it made would be made twice.
IMAGE_BATCH_TIME_LIMIT = min(
    float(CELERY_TASK_SOFT_TIME_LIMIT), IMAGE_LEASE_SECONDS - max(1.0, IMAGE_LEASE_SECONDS / 10)
)
# A batch whose every host is slow shares its process's download threads with the other batches in
# hand: it can take ceil(batch x batches / downloads) rounds of the fetch deadline. That must fit in
# the batch's time limit, or such a batch would be cut every time and never finish.
_slowest_batch = (
    math.ceil(IMAGE_BATCH_SIZE * IMAGE_BATCHES_PER_PROCESS / IMAGE_DOWNLOADS) * FETCH_TOTAL_TIMEOUT
)
if _slowest_batch >= IMAGE_BATCH_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"IMAGE_BATCH_SIZE={IMAGE_BATCH_SIZE} with IMAGE_BATCHES_PER_PROCESS={IMAGE_BATCHES_PER_PROCESS} "
        f"at IMAGE_DOWNLOADS={IMAGE_DOWNLOADS} can take {_slowest_batch:g} s of downloads "
        f"(FETCH_TOTAL_TIMEOUT={FETCH_TOTAL_TIMEOUT:g} each), not under a batch's time limit of "
        f"{IMAGE_BATCH_TIME_LIMIT:g} s (CELERY_TASK_SOFT_TIME_LIMIT={CELERY_TASK_SOFT_TIME_LIMIT}, "
        f"IMAGE_LEASE_SECONDS={IMAGE_LEASE_SECONDS} less a tenth to settle): use smaller batches or "
        "more downloads, or a longer lease"
    )
