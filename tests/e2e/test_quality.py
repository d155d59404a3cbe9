"""End to end: quality=auto, quality_target, max_bytes and output_format=auto through the API, with a
real worker, image server and storage (the embedded stack)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from PIL import Image

from sansio import quality
from tests import corpus
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def smooth(size: tuple[int, int]) -> Image.Image:
    ramp = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_90).resize(size), ramp))


def upload(stack: Stack, server: ImageServer, images: dict[str, bytes], **fields: str) -> dict[str, Any]:
    prefix = uuid.uuid4().hex
    urls = [server.add(f"{prefix}/{name}", body) for name, body in images.items()]
    rows = [["S. No.", "Product Name", "Input Image Urls"]]
    rows += [[str(n), f"Item {n}", url] for n, url in enumerate(urls, start=1)]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    code, accepted = stack.upload(out.getvalue().encode(), **fields)
    assert code == 202, accepted
    return stack.wait_complete(accepted["request_id"])


def outputs(stack: Stack, status: dict[str, Any]) -> dict[int, tuple[dict[str, Any], bytes]]:
    """Each done image's status entry and its output's bytes, by line."""
    found = {}
    for entry in status["images"]:
        fetched = stack.get(entry["output_url"])
        assert fetched.status == 200
        assert len(fetched.data) == entry["bytes"]
        found[entry["line"]] = (entry, fetched.data)
    return found


def test_quality_auto_reaches_the_target_per_image(embedded_stack: Stack, image_server: ImageServer) -> None:
    images = {
        "text.png": corpus.encode(corpus.labelled((800, 600)), "PNG"),
        "smooth.png": corpus.encode(smooth((800, 600)), "PNG"),
        "texture.jpg": corpus.encode(corpus.textured((900, 600)), "JPEG", quality=95),
    }
    status = upload(
        embedded_stack, image_server, images, quality="auto", quality_target="0.99", output_format="jpeg"
    )
    assert status["status"] == "completed", status
    assert status["options"]["quality"] == "auto" and status["options"]["quality_target"] == 0.99
    done = outputs(embedded_stack, status)
    assert set(done) == {2, 3, 4}
    for entry, data in done.values():
        assert entry["format"] == "jpeg" and entry["warning"] is None
        assert 1 <= entry["quality"] <= 100 and entry["score"] >= 0.99
        with Image.open(io.BytesIO(data)) as out:
            assert out.format == "JPEG"
    qualities = {entry["quality"] for entry, _ in done.values()}
    assert len(qualities) > 1, "each image got its own quality"


def test_max_bytes_fits_or_warns(embedded_stack: Stack, image_server: ImageServer) -> None:
    images = {"photo.jpg": corpus.jpeg((900, 600)), "big.jpg": corpus.jpeg((1600, 1200))}
    status = upload(embedded_stack, image_server, images, quality="90", max_bytes="20000")
    assert status["status"] == "completed", status
    done = outputs(embedded_stack, status)
    for entry, data in done.values():
        if entry["warning"] is None:
            assert len(data) <= 20000
        else:  # nothing fits: the smallest output is kept, and said so
            assert entry["warning"].startswith("no output fits max_bytes=20000")
            assert entry["quality"] == quality.Q_MIN
    assert min(entry["quality"] for entry, _ in done.values()) < 90, "the budget lowered a quality"
    impossible = upload(embedded_stack, image_server, {"p.jpg": corpus.jpeg((400, 300))}, max_bytes="50")
    assert impossible["status"] == "completed" and impossible["progress"]["failed"] == 0
    [entry] = impossible["images"]
    assert entry["warning"].startswith("no output fits max_bytes=50") and entry["bytes"] > 50


def test_output_format_auto_keeps_transparency(embedded_stack: Stack, image_server: ImageServer) -> None:
    images = {
        "alpha.png": corpus.png_rgba((600, 400)),
        "texture.jpg": corpus.encode(corpus.textured((900, 600)), "JPEG", quality=95),
        "flat.png": corpus.encode(Image.new("RGB", (400, 300), (200, 30, 30)), "PNG"),
    }
    status = upload(embedded_stack, image_server, images, output_format="auto")
    assert status["status"] == "completed", status
    done = outputs(embedded_stack, status)
    alpha_entry, alpha_data = done[2]
    assert alpha_entry["format"] in ("webp", "avif", "png")
    with Image.open(io.BytesIO(alpha_data)) as out:
        alpha = out.convert("RGBA").getchannel("A").histogram()
        assert sum(alpha[:128]) > 0, "transparency kept"
    for entry, data in done.values():
        assert entry["format"] in ("jpeg", "webp", "avif", "png")
        assert entry["score"] is None or entry["score"] >= quality.DEFAULT_TARGET
        with Image.open(io.BytesIO(data)) as out:
            assert out.format == entry["format"].upper()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quality": "auto7"}, "quality"),
        ({"max_bytes": "-1"}, "max_bytes"),
        ({"quality": "auto", "quality_target": "1.5"}, "quality_target"),
        ({"output_format": "auto", "quality_target": "0.1"}, "quality_target"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    embedded_stack: Stack, fields: dict[str, str], field: str
) -> None:
    body = b"S. No.,Product Name,Input Image Urls\n1,Chair,https://img.example.com/a.jpg\n"
    code, refused = embedded_stack.upload(body, **fields)
    assert code == 400
    assert refused["status"] == "error"
    [error] = refused["errors"]
    assert error["field"] == field and error["message"].startswith(f"{field}: ")
    assert error["line"] is None and error["column"] is None
