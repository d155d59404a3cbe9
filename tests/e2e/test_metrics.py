"""End to end: /metrics adds up web and worker processes; LOG_FORMAT=json lines name the request.

One embedded stack of its own (JSON logs, so both are seen on the same run): the counters are
process-wide, so this stack must see no other test's uploads.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import start_stack
from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"LOG_FORMAT": "json", "WORKER_METRICS_PORT": str(free_port())}
    stack = start_stack(tmp_path_factory.mktemp("metrics"), env)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def finished(json_stack: Stack, image_server: ImageServer) -> dict[str, object]:
    """One request with a good image and a missing one, waited for; and one refused upload."""
    prefix = uuid.uuid4().hex
    body = photo((320, 240), "JPEG", quality=95)
    good = image_server.add(f"{prefix}/good.jpg", body, "image/jpeg")
    out = io.StringIO()
    csv.writer(out).writerows(
        [["S. No.", "Product Name", "Input Image Urls"], ["1", "Chair", f"{good},{good}x"]]
    )
    code, accepted = json_stack.upload(out.getvalue().encode())
    assert code == 202, accepted
    refused, _ = json_stack.upload(b"not,a,catalogue\n")
    assert refused == 400
    status = json_stack.wait_complete(accepted["request_id"])
    assert status["progress"]["done"] == 1 and status["progress"]["failed"] == 1, status
    return {"request_id": accepted["request_id"], "input_bytes": len(body)}


def scrape(stack: Stack, url: str | None = None) -> Samples:
    response = stack.get(url or f"{stack.base_url}/metrics")
    assert response.status == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.data.decode())
        for sample in family.samples
    }


def test_metrics_count_what_the_workers_did(json_stack: Stack, finished: dict[str, object]) -> None:
    samples = scrape(json_stack)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("catalog_uploads_total", outcome="accepted") == 1
    assert value("catalog_uploads_total", outcome="refused") == 1
    assert value("catalog_images_processed_total") == 1
    assert value("catalog_image_failures_total", reason="not_found", retryable="false") == 1
    failures = {labels for name, labels in samples if name == "catalog_image_failures_total"}
    assert failures == {(("reason", "not_found"), ("retryable", "false"))}, "only the 404, and by its code"
    assert value("catalog_image_input_bytes_total") == finished["input_bytes"]
    assert 0 < value("catalog_image_output_bytes_total") < value("catalog_image_input_bytes_total")
    for histogram in ("catalog_image_processing_seconds", "catalog_image_download_seconds"):
        assert value(f"{histogram}_count") == 2, histogram
        assert value(f"{histogram}_bucket", le="+Inf") == 2
        assert value(f"{histogram}_sum") > 0
    assert value("catalog_database_up") == 1
    assert value("catalog_images_queue_depth", state="queued") == 0
    assert value("catalog_images_queue_depth", state="running") == 0
    assert ("catalog_requests_in_progress", (("status", "processing"),)) in samples


def test_a_worker_machine_serves_its_own_counts(json_stack: Stack, finished: dict[str, object]) -> None:
    """What a worker on another machine would show: its counts, and no database gauges (no doubles)."""
    samples = scrape(json_stack, f"http://127.0.0.1:{json_stack.env['WORKER_METRICS_PORT']}/metrics")
    names = {name for name, _ in samples}
    assert samples[("catalog_images_processed_total", ())] == 1
    assert "catalog_image_processing_seconds_count" in names
    assert not {"catalog_database_up", "catalog_images_queue_depth"} & names


def json_lines(stack: Stack, name: str) -> list[dict[str, object]]:
    """Every line our logging wrote (gunicorn's access lines and Celery's banner are not ours)."""
    lines = stack.log_path(name).read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_json_logs_name_the_request_and_its_timing(json_stack: Stack, finished: dict[str, object]) -> None:
    request_id = finished["request_id"]
    web, worker = json_lines(json_stack, "web"), json_lines(json_stack, "worker1")
    assert web and worker
    for line in web + worker:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line

    calls = [line for line in web if line["logger"] == "catalog.http" and line["request_id"] == request_id]
    assert any(str(line["message"]).startswith("POST /api/upload/ 202 in ") for line in calls), calls
    assert any(str(line["message"]).startswith("GET /api/status/ 200 in ") for line in calls), calls
    assert all(isinstance(line["duration_ms"], int) for line in calls)

    images = [
        line
        for line in worker
        if line["logger"] == "catalog.services.processing" and "duration_ms" in line  # one an attempt
    ]
    assert {line["request_id"] for line in images} == {request_id}
    assert sorted(str(line["message"]).split(" in ")[0].split(" ", 2)[2] for line in images) == [
        "done",
        "failed (not_found)",
    ]
    assert all(isinstance(line["duration_ms"], int) for line in images)
