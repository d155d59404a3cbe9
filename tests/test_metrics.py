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
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from catalog import metrics, services, storage
from catalog.fetch import Fetcher, FetchError, FetchLimits
from catalog.logcontext import RequestIdFilter, request_id_context
from sansio.images import ImageRejected, TransformOptions, transform
from tests.corpus import gif_animated

REPO = Path(__file__).resolve().parents[1]
CSV = b"S. No.,Product Name,Input Image Urls\n1,SKU1,https://img.example.com/a.jpg\n"


def raised(call, *args, **kwargs) -> BaseException:
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("HTTP 404 from img.example.com", "http_4xx"),
        ("HTTP 503 from img.example.com", "http_5xx"),
        ("HTTP 204 from img.example.com", "http_other"),
        ("could not resolve img.example.com", "dns"),
        ("could not resolve img.example.com in 5 s", "dns"),
        ("download from img.example.com took longer than 30 s", "timeout"),
        ("img.example.com sent nothing for 10 s", "timeout"),
        ("could not connect to img.example.com in 5 s", "timeout"),
        ("could not connect to img.example.com: connection refused", "connection"),
        ("connection to img.example.com broke: ProtocolError", "connection"),
        ("TLS handshake with img.example.com failed", "connection"),
        ("download from img.example.com exceeded 25 MB limit", "too_large"),
        ("download from img.example.com exceeded 25 MB limit (30 MB announced)", "too_large"),
        ("img.example.com sent text/html, not an image", "not_image"),
        ("more than 5 redirects from img.example.com", "redirects"),
        ("img.example.com sent a body its Content-Encoding does not describe", "fetch"),
    ],
)
def test_download_errors_map_to_a_few_reasons(message: str, reason: str) -> None:
    assert metrics.failure_reason(FetchError(message)) == reason
    wrapped = raised(_wrap, FetchError(message))
    assert metrics.failure_reason(wrapped) == reason, "ImageFailed is classified by what it wraps"


def _wrap(cause: Exception) -> None:
    raise services.ImageFailed(str(cause), retryable=False) from cause


def test_real_errors_get_their_reasons(monkeypatch) -> None:
    refused = raised(Fetcher(FetchLimits()).fetch_image, "http://127.0.0.1:9/a.jpg")
    assert metrics.failure_reason(refused) == "blocked"
    assert metrics.failure_reason(raised(transform, b"<html>hello</html>")) == "unsupported_format"
    frames = raised(transform, gif_animated((8, 8), 3), TransformOptions(max_frames=2))
    assert metrics.failure_reason(frames) == "image_too_large"
    assert metrics.failure_reason(ImageRejected("the image could not be decoded (OSError: x)")) == "decode"

    def broken_save(name: str, content: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(default_storage, "save", broken_save)
    assert metrics.failure_reason(raised(storage.save_bytes, "x.jpg", b"x")) == "storage"
    assert metrics.failure_reason(KeyError("a bug")) == "internal"


def test_every_reason_is_in_the_bounded_set() -> None:
    assert {"blocked", "storage", "internal", "fetch", "decode", "http_4xx"} <= metrics.REASONS
    assert len(metrics.REASONS) < 20, "a label's values must stay few"


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
