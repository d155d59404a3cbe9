"""The API's refusals and its contract shapes, through Django's test client (no worker needed)."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog import services
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage
from tests import spreadsheets

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
    assert status["progress"] == {
        "products": 1,
        "images": 2,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
        "reused": 0,
        "percent": 0,
    }
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


@pytest.mark.parametrize("export", list(spreadsheets.EXPORTS.values()), ids=list(spreadsheets.EXPORTS))
def test_spreadsheet_exports_are_accepted_with_their_other_columns(
    client: Client, django_capture_on_commit_callbacks, export: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        code, body = upload(client, export(spreadsheets.catalogue()))
    assert code == 202, body
    request = ProcessingRequest.objects.get(request_id=body["request_id"])
    assert request.input_columns == ["S. No.", "Product Name", "Brand", "Input Image Urls", "Price"]
    products = Product.objects.filter(request=request).order_by("line")
    stored = [
        (
            p.serial_number,
            tuple(p.images.order_by("position").values_list("input_url", flat=True)),
            tuple(p.kept_cells),
        )
        for p in products
    ]
    assert stored == spreadsheets.read_as()
    assert products[0].input_image_url == f"{spreadsheets.A}\n{spreadsheets.B}", "the cell as written"


def test_a_bad_international_host_is_refused_at_upload_with_its_line_and_column(client: Client) -> None:
    body = "S. No.;Product Name;Input Image Urls\r\n1;Chair;https://img.example.com/a.jpg\r\n2;Lamp;https://a☃.example/b.jpg\r\n"
    code, refused = upload(client, body.encode())
    assert code == 400
    (error,) = refused["errors"]
    assert (error["line"], error["column"]) == (3, "Input Image Urls")
    assert "'☃' (snowman, U+2603) is not allowed in a domain name" in error["message"]


def test_a_windows_1252_export_is_refused_saying_how_to_export(client: Client) -> None:
    body = "S. No.;Product Name;Input Image Urls\r\n1;Crème;https://img.example.com/a.jpg\r\n".encode(
        "cp1252"
    )
    code, refused = upload(client, body)
    assert code == 400
    assert refused["errors"] == [
        {
            "line": None,
            "column": None,
            "message": "the file is not UTF-8 text: line 2 has the byte 0xE8, not valid there; "
            "save it as 'CSV UTF-8 (comma delimited)'",
        }
    ]


def test_the_result_csv_keeps_the_other_columns_in_place(
    client: Client, django_capture_on_commit_callbacks, media: Path
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        _, body = upload(client, spreadsheets.excel_csv_utf8(spreadsheets.catalogue()))
    request = ProcessingRequest.objects.get(request_id=body["request_id"])
    # Every image failed (as a 404 would leave it): what the result CSV echoes is the point here.
    ProductImage.objects.filter(request=request).update(status=ImageStatus.FAILED, error="HTTP 404")
    ProcessingRequest.objects.filter(pk=request.pk).update(images_failed=request.images_total)
    assert services.finalize_request(request.pk)
    request.refresh_from_db()
    rows = list(csv.reader(io.StringIO((media / request.result_file).read_text(), newline="")))
    table = spreadsheets.catalogue()
    assert rows[0] == [*table[0], "Output Image Urls"]
    assert rows[1] == [*table[1], ","], "every input cell echoed in place; failed images leave empty slots"
    assert rows[2] == [*table[2], ","]
    assert rows[3] == [table[3][0], "'=1+2", *table[3][2:], ""], "a formula-like cell is neutralised"
