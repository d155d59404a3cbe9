"""Logs and metrics: formats, files, and where each process keeps its counters."""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env_int, env_str
from config.settings.environment import VAR_DIR
from config.settings.storage import STATIC_ROOT

# --- Logging --------------------------------------------------------------------------------------
LOG_DIR = VAR_DIR / "log"
# Prometheus counters are kept per process in files here, so /metrics adds up web and workers alike.
# Set, not defaulted: a child started with another VAR_DIR (a test stack) inherits its parent's
# variable, and would mix its counts into the parent's.
METRICS_DIR = VAR_DIR / "metrics"
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Bearer token for GET /metrics; without one, /metrics is open in development and off in production.
# A worker machine's own counters, served by its main worker process on HOST:<port> (0: off).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, maximum=65535)
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and (len(METRICS_TOKEN) < 16 or not METRICS_TOKEN.isprintable() or " " in METRICS_TOKEN):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 printable characters without spaces")
for _needed in (LOG_DIR, STATIC_ROOT, METRICS_DIR):
    _needed.mkdir(parents=True, exist_ok=True)
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'text' or 'json'")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "catalog.logcontext.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(processName)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
        "errors": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(LOG_DIR / "errors.log"),
            "level": "ERROR",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console", "errors"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
