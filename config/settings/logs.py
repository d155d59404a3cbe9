"""Logging: level, text or JSON lines, the request id in each, and errors kept in a file."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import env_str
from config.settings.core import VAR_DIR

LOG_DIR = VAR_DIR / "log"
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
            # Logging is set up before any app's ready(), so this handler makes LOG_DIR itself.
            "class": "config.startup.FolderMakingFileHandler",
            "filename": str(LOG_DIR / "errors.log"),
            "level": "ERROR",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console", "errors"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # catalog.http logs every call once with its status; Django's own "Not Found: /x" and "Bad
        # Request" warnings would be a second line for the same call. Server errors (5xx) still log.
        "django.request": {"level": "ERROR"},
    },
}
