"""GET /healthz: is every part this service needs usable right now?"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import current_app
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _storage() -> None:
    default_storage.exists("healthz-probe")


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "broker": _broker, "storage": _storage}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            # The cause goes to the log only: exception text can name hosts, users and paths, and
            # /healthz answers anyone.
            logger.warning("health check %s failed", name, exc_info=True)
            results[name] = "error"
        else:
            results[name] = "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        return JsonResponse({"status": "error", "failing": failing, "checks": results}, status=503)
    return JsonResponse({"status": "ok", "checks": results})
