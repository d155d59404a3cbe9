"""Prometheus counters: what each process records, as it is told (a leaf: it decides nothing).

Every process (gunicorn workers, Celery pool processes) writes its counters and histograms to files
in PROMETHEUS_MULTIPROC_DIR, which each process points at VAR_DIR/metrics as it starts
(config/startup.py); a scrape adds them up (catalog/metrics_http.py serves /metrics, with the gauges
read from the database at scrape time).
Why an image failed is its reason code (sansio/reasons.py), given by whoever raised the failure.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from sansio.reasons import Reason

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

UPLOADS = Counter(
    "catalog_uploads", "Uploaded CSVs, by outcome: accepted, or refused for what they hold.", ["outcome"]
)
for _outcome in ("accepted", "refused"):  # both series exist from the start, at 0
    UPLOADS.labels(outcome=_outcome)
IMAGES_PROCESSED = Counter(
    "catalog_images_processed",
    "Images processed and settled: an output stored and recorded (a repeated URL counts once).",
)
IMAGE_FAILURES = Counter(
    "catalog_image_failures",
    "Attempts at an image that gave no output, by reason code; retryable ones are tried again.",
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

REASONS = frozenset(reason.value for reason in Reason)  # the values of IMAGE_FAILURES' "reason"


def count_attempt(seconds: float, *, failure: Reason | None = None, retryable: bool = False) -> int:
    """One attempt at an image took ``seconds``; with ``failure``, it gave no output for that reason.

    Returns the time in milliseconds, for the log line.
    """
    PROCESSING_SECONDS.observe(seconds)
    if failure is not None:
        IMAGE_FAILURES.labels(reason=failure.value, retryable=str(retryable).lower()).inc()
    return round(seconds * 1000)


def count_processed(images: Iterable[tuple[int, int, bool]]) -> None:
    """Images settled with an output, each as (input bytes, output bytes, reused).

    A reused output was made before, and its bytes counted then: it counts as reused only.
    """
    for input_bytes, output_bytes, reused in images:
        if reused:
            IMAGES_REUSED.inc()
            continue
        IMAGES_PROCESSED.inc()
        INPUT_BYTES.inc(input_bytes)
        OUTPUT_BYTES.inc(output_bytes)


def count_upload(*, accepted: bool) -> None:
    UPLOADS.labels(outcome="accepted" if accepted else "refused").inc()
