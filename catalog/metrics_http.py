"""GET /metrics, and a worker's own metrics port: every process's counts added up, and the gauges.

The gauges are not kept in the processes' files: they are read from the database at scrape time, so a
dead process leaves no stale gauge behind and nothing needs marking dead.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus

logger = logging.getLogger(__name__)


class DatabaseCollector:
    """Queue depth and requests in progress, from our own tables (the broker is not the record)."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("catalog_database_up", "1 if the database could be read for the gauges.")
        try:
            images = dict(
                ProductImage.objects.filter(
                    status__in=(ImageStatus.QUEUED, ImageStatus.RUNNING), duplicate_of__isnull=True
                )
                .order_by()
                .values_list("status")
                .annotate(n=Count("pk"))
            )
            requests = dict(
                ProcessingRequest.objects.filter(completed=False)
                .order_by()
                .values_list("status")
                .annotate(n=Count("pk"))
            )
        except DatabaseError as exc:
            logger.warning("metrics: could not read the queue from the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "catalog_images_queue_depth",
            "Images waiting for a worker (queued) or held by one (running).",
            labels=["state"],
        )
        for state in (ImageStatus.QUEUED, ImageStatus.RUNNING):
            depth.add_metric([state.value], images.get(state.value, 0))
        yield depth
        in_progress = GaugeMetricFamily(
            "catalog_requests_in_progress", "Requests not completed yet, by status.", labels=["status"]
        )
        for status in (RequestStatus.PENDING, RequestStatus.PROCESSING):
            in_progress.add_metric([status.value], requests.get(status.value, 0))
        yield in_progress


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics in Prometheus' text format: every process's counts added up, and the gauges."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    registry = machine_registry()
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def machine_registry() -> CollectorRegistry:
    """The counters and histograms of every process on this machine (same METRICS_DIR)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(settings.METRICS_DIR))  # type: ignore[no-untyped-call]
    return registry


def serve_worker_metrics() -> None:
    """With WORKER_METRICS_PORT, a worker machine answers scrapes of its own processes' counts.

    Its image counters live in files on its own disk, out of the web's reach; the database gauges
    stay on the web's /metrics only, so a sum over all targets counts nothing twice.
    """
    if settings.WORKER_METRICS_PORT:
        start_http_server(settings.WORKER_METRICS_PORT, addr=settings.HOST, registry=machine_registry())
        logger.info("worker metrics on http://%s:%d/metrics", settings.HOST, settings.WORKER_METRICS_PORT)


_TEXT = "text/plain; charset=utf-8"


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """Open in development; with METRICS_TOKEN (needed in production) a bearer token is required."""
    token = settings.METRICS_TOKEN
    if not token:
        if settings.DEVELOPMENT:
            return None
        return HttpResponse("metrics are off: set METRICS_TOKEN\n", status=403, content_type=_TEXT)
    sent = request.headers.get("Authorization", "")
    if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return None
    response = HttpResponse("send Authorization: Bearer <METRICS_TOKEN>\n", status=401, content_type=_TEXT)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
