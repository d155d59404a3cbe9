"""End to end: a CSV uploaded through the API, real workers, real image server, real storage."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from PIL import Image

from tests import corpus, spreadsheets
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def photo(size: tuple[int, int], fmt: str, mode: str = "RGB", **save: object) -> bytes:
    """A noisy, photo-like image: re-encoding it at quality 50 really saves bytes."""
    noise = Image.effect_noise(size, 60).convert("L")
    gradient = Image.linear_gradient("L").resize(size)
    channels = [noise, gradient, Image.merge("RGB", (gradient, noise, noise)).convert("L")]
    if mode == "RGBA":
        channels.append(gradient.point(lambda v: 255 - v))
    image = Image.merge(mode, channels)
    buf = io.BytesIO()
    image.save(buf, fmt, **save)
    return buf.getvalue()


def catalogue(server: ImageServer, prefix: str) -> tuple[bytes, dict[str, tuple[str, tuple[int, int]]]]:
    """A CSV of products with several formats, one missing image and one that is not an image."""
    sources = {
        "a.jpg": (photo((640, 480), "JPEG", quality=95), "JPEG", (640, 480)),
        "b.png": (photo((301, 200), "PNG", "RGBA"), "PNG", (301, 200)),
        "c.webp": (photo((500, 333), "WEBP", quality=95), "WEBP", (500, 333)),
        "d.gif": (corpus.gif_animated((120, 81), 3), "GIF", (120, 81)),
    }
    expected = {}
    for name, (body, fmt, size) in sources.items():
        url = server.add(f"{prefix}/{name}", body)
        expected[url] = (fmt, size)
    urls = list(expected)
    missing = server.url(f"{prefix}/missing.jpg")
    not_image = server.add(f"{prefix}/page.jpg", b"<html>hello</html>", "image/jpeg")
    rows = [
        ["S. No.", "Product Name", "Input Image Urls"],
        ["1", "Chair", f"{urls[0]}, {urls[1]}"],
        ["2.", "Table", urls[2]],
        ["3", "Lamp", f"{urls[3]},{missing},{urls[0]}"],
        ["4", "Rug", not_image],
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(), expected


def test_upload_to_result_csv(stack: Stack, image_server: ImageServer) -> None:
    body, expected = catalogue(image_server, uuid.uuid4().hex)

    code, accepted = stack.upload(body, filename="chairs.csv")
    assert code == 202, accepted
    assert accepted["status"] == "accepted"
    request_id = accepted["request_id"]
    assert uuid.UUID(request_id).version == 4
    assert accepted["status_url"] == f"{stack.base_url}/api/status/?request_id={request_id}"

    status = stack.wait_complete(request_id)
    percents = status.pop("_percent_seen")
    assert percents == sorted(percents), "progress never goes backwards"
    assert status["status"] == "completed_with_errors"
    assert status["name"] == "chairs.csv"
    assert status["completed_at"] is not None
    assert status["progress"] == {
        **{"products": 4, "images": 7, "done": 5, "failed": 2, "percent": 100},
        **{"cancelled": 0, "reused": 0},
    }
    errors = {(e["line"], e["serial_number"]): e for e in status["errors"]}
    assert set(errors) == {(4, 3), (5, 4)}
    assert "404" in errors[(4, 3)]["message"] and errors[(4, 3)]["url"].endswith("/missing.jpg")
    assert errors[(5, 4)]["message"]

    result = stack.get(status["result_file"])
    assert result.status == 200
    rows = list(csv.reader(io.StringIO(result.data.decode())))
    assert rows[0] == ["S. No.", "Product Name", "Input Image Urls", "Output Image Urls"]
    submitted = list(csv.reader(io.StringIO(body.decode())))
    assert [row[:3] for row in rows[1:]] == submitted[1:], "inputs echoed exactly, in input order"

    outputs_seen = 0
    for row in rows[1:]:
        inputs = [u.strip() for u in row[2].split(",")]
        outputs = row[3].split(",")
        assert len(outputs) == len(inputs), row
        for input_url, output_url in zip(inputs, outputs, strict=True):
            if input_url not in expected:
                assert output_url == "", "a failed image leaves its slot empty"
                continue
            fmt, (width, height) = expected[input_url]
            fetched = stack.get(output_url)
            assert fetched.status == 200, output_url
            with Image.open(io.BytesIO(fetched.data)) as out:
                assert out.format == fmt
                assert out.size == (round(width / 2), round(height / 2))
                if fmt == "GIF":
                    assert getattr(out, "n_frames", 1) == 3
            if fmt != "GIF":
                assert len(fetched.data) < len(image_server.files["/" + input_url.split("/", 3)[3]].body)
            outputs_seen += 1
    assert outputs_seen == 5


def test_a_spreadsheet_export_keeps_its_other_columns_in_the_result_csv(
    stack: Stack, image_server: ImageServer
) -> None:
    """Excel in a semicolon locale: URLs on lines of their own and after a semicolon, a file name
    with a space, Brand and Price columns; the result CSV echoes it all in place."""
    prefix = uuid.uuid4().hex
    a = image_server.add(f"{prefix}/a.jpg", photo((64, 48), "JPEG"))
    b = image_server.add(f"{prefix}/b%20b.png", photo((30, 20), "PNG")).replace("%20", " ")
    c = image_server.add(f"{prefix}/c.webp", photo((50, 32), "WEBP"))
    d = image_server.add(f"{prefix}/d.jpg", photo((40, 40), "JPEG"))
    table = spreadsheets.catalogue(a, b, c, d)

    code, accepted = stack.upload(spreadsheets.excel_csv_utf8(table), filename="katalog.csv")
    assert code == 202, accepted
    status = stack.wait_complete(accepted["request_id"])
    assert status["status"] == "completed", status["errors"]

    result = stack.get(status["result_file"])
    assert result.status == 200
    rows = list(csv.reader(io.StringIO(result.data.decode(), newline="")))
    assert rows[0] == [*table[0], "Output Image Urls"]
    echoed = [[cell if not cell.startswith("=") else "'" + cell for cell in row] for row in table[1:]]
    assert [row[:-1] for row in rows[1:]] == echoed, "every input column in place, cells as written"
    for row, (_, urls, _) in zip(rows[1:], spreadsheets.read_as(a, b, c, d), strict=True):
        outputs = row[-1].split(",")
        assert len(outputs) == len(urls), row
        for output_url in outputs:
            assert stack.get(output_url).status == 200, output_url


def test_status_for_unknown_and_malformed_ids(stack: Stack) -> None:
    missing = stack.http.request(
        "GET", f"{stack.base_url}/api/status/", fields={"request_id": str(uuid.uuid4())}
    )
    assert missing.status == 404
    malformed = stack.http.request("GET", f"{stack.base_url}/api/status/", fields={"request_id": "nope"})
    assert malformed.status == 400
    absent = stack.http.request("GET", f"{stack.base_url}/api/status/")
    assert absent.status == 400


def test_healthz_names_every_part(stack: Stack) -> None:
    health = stack.wait_healthy()
    assert health["status"] == "ok"
    assert set(health["checks"]) == {"database", "broker", "storage"}


def test_a_before_picture_is_made_when_its_comparison_is_first_opened(
    stack: Stack, image_server: ImageServer
) -> None:
    """Workers make outputs only. The first look at an image's comparison downloads its input again
    and keeps the frame the encoder was given; later looks read the kept file. An input that changed
    at its source, or no longer downloads, is said on the page in words."""
    prefix = uuid.uuid4().hex
    kept = image_server.add(f"{prefix}/kept.jpg", photo((640, 480), "JPEG", quality=95))
    changed = image_server.add(f"{prefix}/changed.jpg", photo((640, 480), "JPEG", quality=95))
    gone = image_server.add(f"{prefix}/gone.jpg", photo((640, 480), "JPEG", quality=95))
    body = f"S. No.,Product Name,Input Image Urls\n1,Chair,{kept}\n2,Table,{changed}\n3,Lamp,{gone}\n"
    code, accepted = stack.upload(body.encode())
    assert code == 202, accepted
    request_id = accepted["request_id"]
    assert stack.wait_complete(request_id)["progress"]["done"] == 3
    assert image_server.downloads(f"{prefix}/kept.jpg") == 1, "no before picture made by the worker"

    def compare(serial: int) -> str:
        page = stack.get(f"{stack.base_url}/requests/{request_id}/compare/{serial}/1/")
        assert page.status == 200
        return page.data.decode()

    first = compare(1)
    assert image_server.downloads(f"{prefix}/kept.jpg") == 2, "its input downloaded again, once"
    before_url = re.search(r'<img src="([^"]+)"[^>]*data-before', first)
    assert before_url, first
    assert "/previews/" in before_url.group(1) and str(image_server.port) not in before_url.group(1)
    picture = stack.get(before_url.group(1))
    assert picture.status == 200
    with Image.open(io.BytesIO(picture.data)) as before:
        assert (before.format, before.size) == ("JPEG", (320, 240)), "the frame the encoder had"
    assert compare(1) == first
    assert image_server.downloads(f"{prefix}/kept.jpg") == 2, "then read from storage"

    image_server.add(f"{prefix}/changed.jpg", photo((640, 480), "JPEG", quality=80))
    image_server.add(f"{prefix}/gone.jpg", b"gone", "text/plain", status=404)
    for serial, said in (
        (2, "Its input has changed at its source since the output was made from it."),
        (3, "Its input could not be downloaded again: HTTP 404"),
    ):
        page = compare(serial)
        assert "data-before" not in page
        assert 'class="no-preview" role="note">No before picture. ' + said in page, page
