"""Prometheus metrics: where each process keeps its counts, and who may read them."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import env_int, env_str
from config.settings.core import VAR_DIR

# Prometheus counters are kept per process in files here, so /metrics adds up web and workers alike:
# each process points PROMETHEUS_MULTIPROC_DIR at it as it starts (config/startup.py).
METRICS_DIR = VAR_DIR / "metrics"
# A worker machine's own counters, served by its main worker process on HOST:<port> (0: off).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, maximum=65535)
# Bearer token for GET /metrics; without one, /metrics is open in development and off in production.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and (len(METRICS_TOKEN) < 16 or not METRICS_TOKEN.isprintable() or " " in METRICS_TOKEN):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 printable characters without spaces")
