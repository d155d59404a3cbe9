"""The API's refusals and its contract shapes, through Django's test client (no worker needed)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import ProcessingRequest, ProductImage

pytestmark = pytest.mark.django_db

GOOD = b'S. No.,Product Name,Input Image Urls\n1,SKU1,"https://img.example.com/a.jpg,https://img.example.com/b.png"\n'


def upload(client: Client, body: bytes, **fields: str) -> tuple[int, dict[str, Any]]:
    response = client.post("/api/upload/", {"file": SimpleUploadedFile("c.csv", body, "text/csv"), **fields})
    return response.status_code, response.json()


def test_accepts_and_enqueues_once_on_commit(client: Client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        code, body = upload(client, GOOD)
    assert code == 202
    assert uuid.UUID(str(body["request_id"])).version == 4
    assert len(callbacks) == 1, "one dispatch, after the transaction commits"
    request = ProcessingRequest.objects.get(request_id=body["request_id"])
    assert (request.products_total, request.images_total) == (1, 2)
    assert list(ProductImage.objects.filter(request=request).values_list("position", "input_url")) == [
        (0, "https://img.example.com/a.jpg"),
        (1, "https://img.example.com/b.png"),
    ]


def test_bad_csv_is_refused_whole_with_line_and_column(client: Client) -> None:
    body = (
        b"S. No.,Product Name,Input Image Urls\n"
        b"1,SKU1,https://img.example.com/a.jpg\n"
        b"x,SKU2,https://img.example.com/b.jpg\n"
        b"3,,ftp://img.example.com/c.jpg\n"
    )
    code, refused = upload(client, body)
    assert code == 400
    assert refused["status"] == "error"
    found = {(e["line"], e["column"]) for e in refused["errors"]}
    assert {(3, "S. No."), (4, "Product Name"), (4, "Input Image Urls")} <= found
    assert ProcessingRequest.objects.count() == 0, "nothing is stored or queued for a refused file"


def test_missing_file(client: Client) -> None:
    response = client.post("/api/upload/", {})
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "line": None,
        "column": None,
        "message": "no file: send the CSV as the multipart field 'file'",
    }


def test_file_over_the_limit_is_413(client: Client, settings) -> None:
    settings.CSV_MAX_BYTES = 100
    code, refused = upload(client, GOOD + b"2,SKU2,https://img.example.com/z.jpg\n" * 5)
    assert code == 413
    assert refused["errors"][0]["line"] is None
    assert "limit" in refused["errors"][0]["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scale", "0"),
        ("scale", "1.5"),
        ("scale", "abc"),
        ("quality", "0"),
        ("quality", "101"),
        ("quality", "auto7"),
        ("quality", "7.5"),
        ("max_bytes", "-1"),
        ("max_bytes", "0"),
        ("max_bytes", "lots"),
        ("output_format", "tiff"),
        ("webhook_url", "ftp://example.com/hook"),
    ],
)
def test_bad_options_are_named(client: Client, field: str, value: str) -> None:
    code, refused = upload(client, GOOD, **{field: value})
    assert code == 400
    assert refused["errors"][0]["field"] == field
    assert ProcessingRequest.objects.count() == 0


@pytest.mark.parametrize("target", ["0.1", "1.5", "abc"])
def test_a_target_out_of_range_is_refused_naming_the_field(client: Client, target: str) -> None:
    code, refused = upload(client, GOOD, quality="auto", quality_target=target)
    assert code == 400
    assert refused["errors"][0]["field"] == "quality_target"
    assert refused["errors"][0]["message"].startswith("quality_target: ")
    assert refused["errors"][0]["line"] is None


def test_a_target_without_a_search_is_refused(client: Client) -> None:
    code, refused = upload(client, GOOD, quality="60", quality_target="0.99")
    assert code == 400
    assert refused["errors"][0]["field"] == "quality_target"
    assert "quality=auto" in refused["errors"][0]["message"]


def test_quality_auto_and_budget_are_recorded_and_reported(client: Client) -> None:
    code, body = upload(client, GOOD, quality="auto", quality_target="0.995", max_bytes="50000")
    assert code == 202
    request = ProcessingRequest.objects.get(request_id=body["request_id"])
    assert (request.quality_auto, request.quality_target, request.max_bytes) == (True, 0.995, 50000)
    status = client.get(f"/api/status/?request_id={body['request_id']}").json()
    assert status["options"]["quality"] == "auto"
    assert (status["options"]["quality_target"], status["options"]["max_bytes"]) == (0.995, 50000)
    assert status["images"] == [] and status["images_truncated"] is False
    _, body = upload(client, GOOD, output_format="auto")
    request = ProcessingRequest.objects.get(request_id=body["request_id"])
    assert (request.quality_auto, request.quality, request.output_format) == (False, 50, "auto")


def test_options_are_recorded(client: Client) -> None:
    code, body = upload(client, GOOD, scale="0.25", quality="80", output_format="webp")
    assert code == 202
    request = ProcessingRequest.objects.get(request_id=body["request_id"])
    assert (request.scale, request.quality, request.output_format) == (0.25, 80, "webp")


@pytest.mark.parametrize(("query", "code"), [("", 400), ("?request_id=", 400), ("?request_id=123", 400)])
def test_status_refuses_malformed_ids(client: Client, query: str, code: int) -> None:
    response = client.get(f"/api/status/{query}")
    assert response.status_code == code
    assert response.json()["status"] == "error"
    assert response.json()["message"]


def test_status_unknown_id_is_404(client: Client) -> None:
    response = client.get(f"/api/status/?request_id={uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["status"] == "error"


def test_status_shape(client: Client) -> None:
    _, body = upload(client, GOOD)
    status = client.get(f"/api/status/?request_id={body['request_id']}").json()
    assert status["status"] == "pending"
    assert status["completed"] is False
    assert status["result_file"] is None
    assert status["progress"] == {"products": 1, "images": 2, "done": 0, "failed": 0, "percent": 0}
    assert status["errors"] == []
    for key in ("request_id", "name", "created_at", "completed_at"):
        assert key in status


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://10.1.2.3/hook", "private"),
        ("http://2130706433/hook", "valid URL"),  # refused by the URL check before the address policy
        ("http://nothing.invalid/hook", "could not resolve"),
    ],
)
def test_webhook_urls_get_the_download_address_policy(client: Client, url: str, fragment: str) -> None:
    code, refused = upload(client, GOOD, webhook_url=url)
    assert code == 400
    [error] = refused["errors"]
    assert error["field"] == "webhook_url"
    assert fragment in error["message"]
    assert ProcessingRequest.objects.count() == 0
