"""Limits and knobs of the work itself: CSV uploads, fetching, image processing, webhooks."""

from __future__ import annotations

import base64
import ipaddress
import re

from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int, env_list, env_str
from config.machine_secrets import new_webhook_secret, persisted_secret
from config.settings.environment import DEVELOPMENT, VAR_DIR

# --- Uploads and CSV limits -----------------------------------------------------------------------
CSV_MAX_BYTES = env_int("CSV_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
CSV_MAX_ROWS = env_int("CSV_MAX_ROWS", 200_000, minimum=1)
CSV_MAX_FIELD_BYTES = env_int("CSV_MAX_FIELD_BYTES", 65_536, minimum=64)
CSV_MAX_URLS_PER_ROW = env_int("CSV_MAX_URLS_PER_ROW", 100, minimum=1)
CSV_MAX_PROBLEMS = env_int("CSV_MAX_PROBLEMS", 100, minimum=1)
CSV_MAX_URL_LENGTH = env_int("CSV_MAX_URL_LENGTH", 2048, minimum=16)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads spool to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = CSV_MAX_BYTES + 1024 * 1024

# --- Fetching images ------------------------------------------------------------------------------
FETCH_CONNECT_TIMEOUT = env_float("FETCH_CONNECT_TIMEOUT", 5.0)
FETCH_READ_TIMEOUT = env_float("FETCH_READ_TIMEOUT", 10.0)
FETCH_TOTAL_TIMEOUT = env_float("FETCH_TOTAL_TIMEOUT", 30.0)
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
FETCH_MAX_REDIRECTS = env_int("FETCH_MAX_REDIRECTS", 5)


def _networks(name: str) -> tuple[str, ...]:
    networks = []
    for item in env_list(name):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a CIDR network: {exc}") from None
    return tuple(networks)


FETCH_ALLOWED_PRIVATE_NETWORKS = _networks("FETCH_ALLOWED_PRIVATE_NETWORKS")

# --- Image processing -----------------------------------------------------------------------------
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 50_000_000, minimum=1)
IMAGE_MAX_FRAMES = env_int("IMAGE_MAX_FRAMES", 200, minimum=1)
IMAGE_MAX_ATTEMPTS = env_int("IMAGE_MAX_ATTEMPTS", 5, minimum=1)
# What transparent pixels become in a JPEG output (which has no alpha): "#rrggbb".
_background = env_str("IMAGE_BACKGROUND", "#ffffff")
if not re.fullmatch(r"#[0-9a-fA-F]{6}", _background):
    raise ImproperlyConfigured(f"IMAGE_BACKGROUND={_background!r} must be a colour like #ffffff")
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
# process more than cores (CELERY_WORKER_CONCURRENCY below), one transform each does best: 0.79-0.84
# against 0.77-0.83 for a process per core with two (3 paired runs).
IMAGE_BATCH_SIZE = env_int("IMAGE_BATCH_SIZE", 16, minimum=1, maximum=256)
IMAGE_DOWNLOADS = env_int("IMAGE_DOWNLOADS", 8, minimum=1, maximum=64)
IMAGE_TRANSFORMS = env_int("IMAGE_TRANSFORMS", 1, minimum=1, maximum=64)
RECONCILE_INTERVAL_SECONDS = env_float("RECONCILE_INTERVAL_SECONDS", 30.0)

# --- Webhooks -------------------------------------------------------------------------------------
# In Standard Webhooks form: "whsec_" + base64 key bytes. Unset in production: webhooks are refused at
# upload. Development: a random one made on first start and kept in VAR_DIR.
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET") or (
    persisted_secret(VAR_DIR / "secrets" / "webhook-secret", new_webhook_secret) if DEVELOPMENT else ""
)
if WEBHOOK_SECRET.startswith("whsec_"):
    try:
        base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise ImproperlyConfigured("WEBHOOK_SECRET: after 'whsec_' must come base64 key bytes") from None
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 10.0)
