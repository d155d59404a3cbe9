"""Metrics and request logs in one process: why an image failed, who may scrape, what a call logs."""

from __future__ import annotations

import glob
import io
import json
import logging
import logging.config
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from catalog import metrics
from catalog.fetch import Fetcher, FetchError, FetchLimits
from catalog.logcontext import RequestIdFilter, request_id_context
from sansio.images import ImageRejected, TransformOptions, transform
from sansio.reasons import Reason
from tests.corpus import gif_animated

REPO = Path(__file__).resolve().parents[1]
CSV = b"S. No.,Product Name,Input Image Urls\n1,SKU1,https://img.example.com/a.jpg\n"


def raised(call, *args, **kwargs) -> BaseException:
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


def test_failures_carry_their_code_from_where_they_happen(monkeypatch) -> None:
    """Nothing classifies messages: the fetcher, the transform and the service say why."""
    refused = raised(Fetcher(FetchLimits()).fetch_image, "http://127.0.0.1:9/a.jpg")
    assert isinstance(refused, FetchError) and refused.code == Reason.BLOCKED
    not_image = raised(transform, b"<html>hello</html>")
    assert isinstance(not_image, ImageRejected) and not_image.code == Reason.NOT_AN_IMAGE
    frames = raised(transform, gif_animated((8, 8), 3), TransformOptions(max_frames=2))
    assert isinstance(frames, ImageRejected) and frames.code == Reason.IMAGE_TOO_LARGE


def test_an_attempt_is_counted_by_the_code_it_is_told() -> None:
    labels = {"reason": "not_found", "retryable": "false"}
    before = own_sample("catalog_image_failures_total", **labels)
    assert metrics.count_attempt(0.25, failure=Reason.NOT_FOUND) == 250
    assert own_sample("catalog_image_failures_total", **labels) == before + 1


def test_the_reason_label_takes_only_the_codes() -> None:
    assert {reason.value for reason in Reason} == metrics.REASONS
    assert {"not_found", "timeout", "truncated", "storage", "internal"} <= metrics.REASONS
    assert len(metrics.REASONS) < 20, "a label's values must stay few"


def test_metrics_is_a_leaf() -> None:
    """It records what it is told: no import of models, services or the fetcher (no import circle)."""
    source = (REPO / "catalog" / "metrics.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "catalog" in line], imports


# --- /metrics and the upload counter -----------------------------------------------------------------


def own_sample(name: str, **labels: str) -> float:
    """This process's value only: other test runs may write to the same metrics folder at once."""
    files = glob.glob(os.path.join(django_settings.METRICS_DIR, f"*_{os.getpid()}.db"))
    for family in MultiProcessCollector.merge(files):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers or None)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.mark.django_db
def test_uploads_are_counted_and_the_queue_is_read_from_the_database(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    accepted, refused = (
        own_sample("catalog_uploads_total", outcome="accepted"),
        own_sample("catalog_uploads_total", outcome="refused"),
    )
    with django_capture_on_commit_callbacks(execute=False):
        good = client.post("/api/upload/", {"file": SimpleUploadedFile("c.csv", CSV, "text/csv")})
        bad = client.post("/api/upload/", {"file": SimpleUploadedFile("c.csv", b"nonsense", "text/csv")})
    assert (good.status_code, bad.status_code) == (202, 400)
    assert own_sample("catalog_uploads_total", outcome="accepted") == accepted + 1
    assert own_sample("catalog_uploads_total", outcome="refused") == refused + 1

    scraped = scrape(client)
    assert scraped[("catalog_database_up", ())] == 1
    assert scraped[("catalog_images_queue_depth", (("state", "queued"),))] == 1
    assert scraped[("catalog_images_queue_depth", (("state", "running"),))] == 0
    assert scraped[("catalog_requests_in_progress", (("status", "pending"),))] == 1
    assert ("catalog_uploads_total", (("outcome", "accepted"),)) in scraped


@pytest.mark.django_db
def test_a_token_guards_metrics(client: Client, settings) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scrape(client, Authorization="Bearer s3cret-metrics-token")


@pytest.mark.django_db
def test_production_without_a_token_serves_no_metrics(client: Client, settings) -> None:
    settings.DEVELOPMENT = False
    assert client.get("/metrics").status_code == 403


def test_a_short_metrics_token_fails_loudly(tmp_path: Path) -> None:
    env = {**os.environ, "APP_ENV": "development", "VAR_DIR": str(tmp_path), "METRICS_TOKEN": "short"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN must be at least 16" in result.stderr


# --- Request logs ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_api_call_is_logged_with_its_request_id_and_duration(
    client: Client, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks
) -> None:
    caplog.set_level(logging.INFO, logger="catalog.http")
    with django_capture_on_commit_callbacks(execute=False):
        accepted = client.post("/api/upload/", {"file": SimpleUploadedFile("c.csv", CSV, "text/csv")}).json()
    client.get(f"/api/status/?request_id={accepted['request_id']}")
    client.get("/api/status/?request_id=%0Aforged")
    client.get("/metrics")
    lines = [r for r in caplog.records if r.name == "catalog.http"]
    assert [r.getMessage().split(" in ")[0] for r in lines] == [
        "POST /api/upload/ 202",
        "GET /api/status/ 200",
        "GET /api/status/ 400",
    ], "one line a call; scrapes are not logged"
    assert [getattr(r, "request_id", None) for r in lines] == [accepted["request_id"]] * 2 + ["-"]
    assert all(isinstance(getattr(r, "duration_ms", None), int) for r in lines)


def test_json_lines_carry_the_request_id() -> None:
    """LOG_FORMAT=json as configured: one object a line, with the id from the context."""
    configurator = logging.config.DictConfigurator(django_settings.LOGGING)
    handler = logging.StreamHandler(stream := io.StringIO())
    handler.setFormatter(
        configurator.configure_formatter(dict(django_settings.LOGGING["formatters"]["json"]))
    )
    handler.addFilter(RequestIdFilter())
    request_id = uuid.uuid4()
    with request_id_context(request_id):
        record = logging.LogRecord("catalog.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
        handler.handle(record)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == str(request_id)
    assert line["message"] == "hello there"
    assert line["level"] == "INFO"
    assert line["logger"] == "catalog.x"
