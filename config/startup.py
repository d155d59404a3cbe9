"""What each process does once as it starts, after its settings are read: the one step with effects.

Reading settings (config/settings/) only computes values. The folders under VAR_DIR that the service
writes to and PROMETHEUS_MULTIPROC_DIR are made and set here, as the first installed app's ready():
every process runs it in django.setup() (manage.py, gunicorn through config.wsgi, Celery's worker
and beat through its Django fix-up, pytest-django), before any other app's ready().
"""

from __future__ import annotations

import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PROMETHEUS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class StartupConfig(AppConfig):
    name = "config"
    verbose_name = "Process start-up"

    def ready(self) -> None:
        make_var_folders()
        point_prometheus_at_metrics_dir()


def make_var_folders() -> None:
    """The folders that are written to without being made first: static files, metrics, and the
    embedded broker's queue and control folders (kombu's filesystem transport only lists them)."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    broker = {
        options[name] for name in ("data_folder_in", "data_folder_out", "control_folder") if name in options
    }
    for folder in (settings.STATIC_ROOT, settings.METRICS_DIR, *sorted(broker)):
        Path(folder).mkdir(parents=True, exist_ok=True)


def point_prometheus_at_metrics_dir() -> None:
    """This process's counters go to files in METRICS_DIR, which /metrics adds up over every process.

    prometheus_client reads the variable as it is first imported (it picks its value class then), so
    this runs before anything imports it: the admin's ready() imports catalog's counters, and this
    app's comes first. Set, not defaulted: a child started with another VAR_DIR (a test stack)
    inherits its parent's variable, and would mix its counts into the parent's.
    """
    folder = str(settings.METRICS_DIR)
    if "prometheus_client.values" in sys.modules and os.environ.get(PROMETHEUS_DIR_VARIABLE) != folder:
        raise ImproperlyConfigured(
            f"prometheus_client was imported before {PROMETHEUS_DIR_VARIABLE} was set to {folder}: this "
            "process's counters would not reach /metrics (import it only after django.setup())"
        )
    os.environ[PROMETHEUS_DIR_VARIABLE] = folder


class FolderMakingFileHandler(logging.handlers.WatchedFileHandler):
    """The error log's handler, which makes the file's folder (LOG_DIR) before it opens the file:
    Django sets up logging before any app's ready(), so before make_var_folders."""

    def __init__(self, filename: str, *args: Any, **kwargs: Any) -> None:
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(filename, *args, **kwargs)
