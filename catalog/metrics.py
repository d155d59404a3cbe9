"""Prometheus metrics: what each process counts, what our tables say at scrape time, and /metrics.

Every process (gunicorn workers, Celery pool processes) writes its counters and histograms to files
in PROMETHEUS_MULTIPROC_DIR, which settings always points at VAR_DIR/metrics; a scrape adds them
up. The gauges are not kept in those files: they are read from the database at scrape time, so a
dead process leaves no stale gauge behind and nothing needs marking dead.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Concatenate, ParamSpec

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from catalog import storage
from catalog.fetch import FetchError
from catalog.fetch import _Refused as AddressRefused  # the policy's refusals: never worth a retry
from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus
from sansio.images import ImageRejected

if TYPE_CHECKING:
    from catalog.services.processing import ClaimedImage, ImageOutput

logger = logging.getLogger(__name__)

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

UPLOADS = Counter(
    "catalog_uploads", "Uploaded CSVs, by outcome: accepted, or refused for what they hold.", ["outcome"]
)
for _outcome in ("accepted", "refused"):  # both series exist from the start, at 0
    UPLOADS.labels(outcome=_outcome)
IMAGES_PROCESSED = Counter(
    "catalog_images_processed", "Images downloaded, transformed and stored (a repeated URL counts once)."
)
IMAGE_FAILURES = Counter(
    "catalog_image_failures",
    "Attempts at an image that gave no output, by reason; retryable ones are tried again.",
    ["reason", "retryable"],
)
IMAGES_REUSED = Counter(
    "catalog_images_reused",
    "Images given an output made before (unchanged at their host, or identical bytes): not transformed.",
)
INPUT_BYTES = Counter("catalog_image_input_bytes", "Bytes downloaded for images that were processed.")
OUTPUT_BYTES = Counter("catalog_image_output_bytes", "Bytes of the outputs stored.")
PROCESSING_SECONDS = Histogram(
    "catalog_image_processing_seconds",
    "One attempt at an image: download, transform and store, whatever the outcome.",
    buckets=_SECONDS,
)
DOWNLOAD_SECONDS = Histogram(
    "catalog_image_download_seconds", "Downloading one image, whatever the outcome.", buckets=_SECONDS
)

# --- Why an image failed: a small fixed set of labels, never the message itself ----------------------

# The first pattern found in the message names the reason; the messages are our own (catalog/fetch.py,
# sansio/images.py), so a new kind of message falls back to "fetch" or "decode" until it is listed.
_FETCH_REASONS = (
    (re.compile(r"^HTTP 4\d\d "), "http_4xx"),
    (re.compile(r"^HTTP 5\d\d "), "http_5xx"),
    (re.compile(r"^HTTP \d+ "), "http_other"),
    (re.compile(r"^could not resolve "), "dns"),
    (re.compile(r"took longer than|sent nothing for|^could not connect to \S+ in "), "timeout"),
    (re.compile(r"exceeded .*limit"), "too_large"),
    (re.compile(r"not an image$"), "not_image"),
    (re.compile(r"^could not connect |^connection to |^TLS "), "connection"),
    (re.compile(r"redirects from"), "redirects"),
)
_IMAGE_REASONS = (
    (re.compile(r"too large to decode|MP, over the|frame limit"), "image_too_large"),
    (re.compile(r"^not an image in a supported format"), "unsupported_format"),
)
REASONS = frozenset(
    {reason for _, reason in _FETCH_REASONS + _IMAGE_REASONS}
    | {"blocked", "fetch", "decode", "storage", "internal"}
)


def failure_reason(exc: BaseException) -> str:
    """One of REASONS for an exception out of producing an image (ImageFailed wraps the real one)."""
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, AddressRefused):
            return "blocked"
        if isinstance(link, FetchError):
            return _first_match(_FETCH_REASONS, str(link), "fetch")
        if isinstance(link, ImageRejected):
            return _first_match(_IMAGE_REASONS, str(link), "decode")
        link = link.__cause__
    return "storage" if _raised_in(exc, storage.__file__) else "internal"


def _first_match(patterns: Iterable[tuple[re.Pattern[str], str]], message: str, default: str) -> str:
    return next((reason for pattern, reason in patterns if pattern.search(message)), default)


def _raised_in(exc: BaseException, filename: str) -> bool:
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == filename:
            return True
        frame = frame.tb_next
    return False


# --- Hooks where the counted things happen ----------------------------------------------------------

P = ParamSpec("P")


def observe_image(
    produce: Callable[Concatenate[ClaimedImage, P], ImageOutput],
) -> Callable[Concatenate[ClaimedImage, P], ImageOutput]:
    """Counts, times and logs each attempt at an image (the log line carries the request id)."""

    @functools.wraps(produce)
    def observed(claimed: ClaimedImage, /, *args: P.args, **kwargs: P.kwargs) -> ImageOutput:
        started = time.perf_counter()
        try:
            output = produce(claimed, *args, **kwargs)
        except Exception as exc:
            reason = failure_reason(exc)
            retryable = getattr(exc, "retryable", True)  # tasks.py retries what it did not expect
            IMAGE_FAILURES.labels(reason=reason, retryable=str(retryable).lower()).inc()
            ms = _observe_time(started)
            logger.info(
                "image %s failed (%s) in %d ms", claimed.image.pk, reason, ms, extra={"duration_ms": ms}
            )
            raise
        ms = _observe_time(started)
        if output.reused:  # nothing made: its bytes were counted when it was
            IMAGES_REUSED.inc()
        else:
            IMAGES_PROCESSED.inc()
            INPUT_BYTES.inc(output.input_bytes)
            OUTPUT_BYTES.inc(output.output_bytes)
        logger.info(
            "image %s done in %d ms: %d -> %d bytes",
            claimed.image.pk,
            ms,
            output.input_bytes,
            output.output_bytes,
            extra={"duration_ms": ms},
        )
        return output

    return observed


def _observe_time(started: float) -> int:
    """Records the attempt's time in the histogram; returns it in milliseconds for the log."""
    seconds = time.perf_counter() - started
    PROCESSING_SECONDS.observe(seconds)
    return round(seconds * 1000)


def count_upload(*, accepted: bool) -> None:
    UPLOADS.labels(outcome="accepted" if accepted else "refused").inc()


# --- Scrape time ----------------------------------------------------------------------------------


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
