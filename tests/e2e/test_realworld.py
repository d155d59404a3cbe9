"""A handful of real-world files through the real pipeline: upload, worker, image server, storage, status.

The whole corpus runs through the transform in tests/unit/test_realworld.py; here a few files of each
outcome go end to end, to prove that what the transform decides reaches the status API (message and
code) and the stored outputs (size, format, orientation, transparency, timing, loop count).
"""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.support.imagecheck import Expect, check_output
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack
from tests.unit.test_realworld import ANIMATED, EXPECTED, REALWORLD, TRANSPARENT, needs_corpus

pytestmark = [pytest.mark.e2e, needs_corpus]

FILES = [
    "pillow-g4_orientation_6.tif",  # oriented once
    "exiforient-Portrait_8.jpg",
    "imagepng-tbwn0g16.png",  # a 16-bit colour key
    "pillow-l_trns.png",  # an 8-bit colour key
    "imagewebp-random_lossy.webp",  # 150 ms a frame
    "pillow-different_transparency.gif",  # plays once
    "pillow-delay.png",  # APNG
    "imagetiff-int16.tif",  # signed samples: a visible range
    "libjpegturbo-monkey12.jpg",  # refused: unsupported
    "pillow-truncated_jpeg.jpg",  # refused: truncated
    "libpng-badcrc.png",  # refused: damaged
    "libvips-blankpage.pdf",  # refused: not an image
    "pillow-bmpsuite-b-reallybig.bmp",  # refused: image too large
]
WIDE = {"imagetiff-int16.tif"}


def test_real_world_files_end_to_end(embedded_stack: Stack, image_server: ImageServer) -> None:
    prefix = uuid.uuid4().hex
    urls = {name: image_server.add(f"{prefix}/{name}", (REALWORLD / name).read_bytes()) for name in FILES}
    missing = image_server.url(f"{prefix}/missing.jpg")
    rows = [["S. No.", "Product Name", "Input Image Urls"]]
    rows += [[str(n), name, url] for n, (name, url) in enumerate(urls.items(), start=1)]
    rows.append([str(len(rows)), "missing", missing])
    body = io.StringIO()
    csv.writer(body).writerows(rows)

    code, accepted = embedded_stack.upload(body.getvalue().encode(), filename="realworld.csv")
    assert code == 202, accepted
    status = embedded_stack.wait_complete(accepted["request_id"], timeout=240)

    refused = {name for name in FILES if EXPECTED[name] is not None}
    codes = {error["url"]: error["code"] for error in status["errors"]}
    assert codes == {urls[name]: EXPECTED[name] for name in refused} | {missing: "not_found"}
    for error in status["errors"]:
        assert error["message"] and "Error" not in error["message"], error

    result = embedded_stack.get(status["result_file"])
    outputs = {row[2]: row[3] for row in csv.reader(io.StringIO(result.data.decode()))}
    for name in FILES:
        if name in refused:
            assert outputs[urls[name]] == "", f"{name}: a refused image leaves its slot empty"
            continue
        fetched = embedded_stack.get(outputs[urls[name]])
        assert fetched.status == 200, name
        extension = outputs[urls[name]].rsplit(".", 1)[1]
        out_format = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}[extension]
        expect = Expect(animated=name in ANIMATED, transparent=name in TRANSPARENT, wide_samples=name in WIDE)
        check_output(name, (REALWORLD / name).read_bytes(), fetched.data, out_format, expect)
