"""Catalogues sent again, end to end: a real worker, an image host that sends validators and 304s.

Every assertion is on counts and states (what the host sent, what the status says), never on time.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import urllib3
from django.conf import settings

from tests.e2e.test_cli import submit
from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e


def catalogue_csv(urls: list[str], per_row: int = 2) -> bytes:
    lines = ["S. No.,Product Name,Input Image Urls"]
    for row, start in enumerate(range(0, len(urls), per_row), start=1):
        lines.append(f'{row},SKU{row},"{",".join(urls[start : start + per_row])}"')
    return ("\n".join(lines) + "\n").encode()


def run(stack: Stack, body: bytes, **fields: str) -> dict[str, Any]:
    code, accepted = stack.upload(body, **fields)
    assert code == 202, accepted
    return stack.wait_complete(str(accepted["request_id"]))


def output_urls(stack: Stack, status: dict[str, Any]) -> list[str]:
    result = stack.get(str(status["result_file"]))
    assert result.status == 200
    rows = list(csv.reader(io.StringIO(result.data.decode())))[1:]
    return [url for row in rows for url in row[3].split(",")]


def path_of(server: ImageServer, url: str) -> str:
    return url.split(str(server.port), 1)[1]


def test_a_rerun_downloads_nothing_whole_and_a_changed_image_is_made_again(
    stack: Stack, image_server: ImageServer
) -> None:
    """On every backend (SQLite, PostgreSQL; files, S3): the upserts and shared names are theirs."""
    prefix = uuid.uuid4().hex
    urls = [
        image_server.add(f"{prefix}/{n}.jpg", photo((80 + n, 60), "JPEG"), validators=True) for n in range(6)
    ]
    body = catalogue_csv(urls)

    first = run(stack, body)
    assert first["status"] == "completed"
    assert first["progress"]["reused"] == 0
    first_outputs = output_urls(stack, first)
    assert len(set(first_outputs)) == 6 and all(first_outputs)

    again = run(stack, body)
    assert again["status"] == "completed"
    assert again["progress"]["done"] == 6 and again["progress"]["reused"] == 6
    for url in urls:
        assert image_server.downloads(path_of(image_server, url)) == 1, "not downloaded whole again"
        assert image_server.answers[(path_of(image_server, url), 304)] == 1, "asked conditionally"
    assert output_urls(stack, again) == first_outputs, "the stored outputs, shared"
    assert stack.get(first_outputs[0]).status == 200

    changed = path_of(image_server, urls[2])
    image_server.add(changed, photo((90, 70), "JPEG"), validators=True)
    third = run(stack, body)
    assert third["progress"]["reused"] == 5, "only the changed image is made again"
    assert image_server.downloads(changed) == 2
    assert [image_server.downloads(path_of(image_server, u)) for u in urls].count(1) == 5
    third_outputs = output_urls(stack, third)
    assert third_outputs[2] != first_outputs[2]
    assert third_outputs[:2] + third_outputs[3:] == first_outputs[:2] + first_outputs[3:]
    assert stack.get(third_outputs[2]).status == 200


def test_identical_bytes_under_another_url_are_transformed_once(
    embedded_stack: Stack, image_server: ImageServer
) -> None:
    prefix = uuid.uuid4().hex
    picture = photo((120, 90), "PNG")
    first_url = image_server.add(f"{prefix}/a.png", picture)  # a host without validators
    copy_url = image_server.add(f"{prefix}/elsewhere/copy.png", picture)

    first = run(embedded_stack, catalogue_csv([first_url]))
    copy = run(embedded_stack, catalogue_csv([copy_url]))
    assert copy["progress"]["reused"] == 1, "downloaded, found identical, not transformed"
    assert image_server.downloads(path_of(image_server, copy_url)) == 1
    assert output_urls(embedded_stack, copy) == output_urls(embedded_stack, first)

    other_options = run(embedded_stack, catalogue_csv([copy_url]), quality="80")
    assert other_options["progress"]["reused"] == 0, "other options make another output"
    assert output_urls(embedded_stack, other_options) != output_urls(embedded_stack, first)


def upload_with_key(stack: Stack, body: bytes, key: str, **fields: str) -> tuple[int, dict[str, Any]]:
    form: dict[str, Any] = {"file": ("catalogue.csv", body, "text/csv"), **fields}
    # A connection of its own: the uploads run in threads, and none may reuse one the server closed.
    with urllib3.PoolManager(retries=False, timeout=120) as http:
        resp = http.request(
            "POST", f"{stack.base_url}/api/upload/", fields=form, headers={"Idempotency-Key": key}
        )
    return resp.status, json.loads(resp.data)


def test_idempotent_uploads(embedded_stack: Stack, image_server: ImageServer) -> None:
    url = image_server.add(f"{uuid.uuid4().hex}/a.jpg", photo((40, 30), "JPEG"))
    body = catalogue_csv([url])
    key = f"order-{uuid.uuid4()}"
    code, first = upload_with_key(embedded_stack, body, key)
    assert code == 202
    code, again = upload_with_key(embedded_stack, body, key)
    assert (code, again) == (202, first)
    code, other = upload_with_key(embedded_stack, body, key, scale="0.25")
    assert code == 422, other
    embedded_stack.wait_complete(str(first["request_id"]))


def upload_in_thread(
    stack: Stack, body: bytes, key: str, answers: list[tuple[int, dict[str, Any]]]
) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.append(upload_with_key(stack, body, key)))
    thread.start()
    return thread


def key_rows(stack: Stack, key: str) -> list[tuple[int | None]]:
    """The key's rows in the stack's database, each with the id of the request it is bound to (or None)."""
    return stack.read_database("SELECT request_id FROM catalog_idempotentupload WHERE key = ?", (key,))


def test_a_duplicate_upload_while_the_first_is_being_accepted_is_409(
    embedded_stack: Stack, image_server: ImageServer
) -> None:
    # A big upload takes its key, then stores its 40,000 rows for a while; duplicates sent once the key
    # is seen taken (read from the database, not guessed from time) find it held. One sent at the very
    # same instant as the first could instead queue behind its storing on SQLite and get its answer:
    # never a second request. A round whose first upload was stored before its duplicates arrived
    # proves nothing and is run again with a new key.
    url = image_server.add(f"{uuid.uuid4().hex}/a.jpg", photo((40, 30), "JPEG"))
    lines = "".join(f"{n},P{n},{url}\n" for n in range(1, 40_001))
    body = f"S. No.,Product Name,Input Image Urls\n{lines}".encode()
    accepted_ids: list[str] = []
    conflicts = 0
    for _ in range(3):
        key = f"big-{uuid.uuid4()}"
        first: list[tuple[int, dict[str, Any]]] = []
        first_upload = upload_in_thread(embedded_stack, body, key, first)
        deadline = time.monotonic() + 120
        while not key_rows(embedded_stack, key):
            assert time.monotonic() < deadline and first_upload.is_alive(), (first, embedded_stack.logs())
            time.sleep(0.01)
        duplicates: list[tuple[int, dict[str, Any]]] = []
        threads = [upload_in_thread(embedded_stack, body, key, duplicates) for _ in range(2)]
        for thread in [first_upload, *threads]:
            thread.join()
        ((code, accepted),) = first
        assert code == 202, accepted
        accepted_ids.append(str(accepted["request_id"]))
        for code, answer in duplicates:
            assert (code, answer) == (202, accepted) or code == 409, answer
        assert upload_with_key(embedded_stack, body, key) == (202, accepted), (
            "once accepted: the first answer"
        )
        assert len(key_rows(embedded_stack, key)) == 1
        conflicts = sum(code == 409 for code, _ in duplicates)
        if conflicts:
            break
    assert conflicts, "in three rounds no duplicate arrived while its first upload was being stored"
    for request_id in accepted_ids:
        embedded_stack.wait_complete(request_id, timeout=240)


def test_cancel_mid_request(embedded_stack: Stack, image_server: ImageServer) -> None:
    gate = threading.Event()  # the host holds every answer until the test opens it
    prefix = uuid.uuid4().hex
    # More than the worker's two processes claim at once (IMAGE_BATCHES_PER_PROCESS batches each), so
    # some are still queued.
    count = (2 * settings.IMAGE_BATCHES_PER_PROCESS + 1) * settings.IMAGE_BATCH_SIZE
    urls = [image_server.add(f"{prefix}/{n}.jpg", photo((40, 30), "JPEG"), gate=gate) for n in range(count)]
    code, accepted = embedded_stack.upload(catalogue_csv(urls, per_row=4))
    assert code == 202
    request_id = str(accepted["request_id"])
    paths = [path_of(image_server, u) for u in urls]
    deadline = time.monotonic() + 120
    while sum(image_server.hits[p] for p in paths) == 0:  # a worker has started
        assert time.monotonic() < deadline, embedded_stack.logs()
        time.sleep(0.05)

    resp = embedded_stack.http.request("POST", f"{embedded_stack.base_url}/api/requests/{request_id}/cancel/")
    assert resp.status == 200, resp.data
    gate.set()
    status = embedded_stack.wait_complete(request_id)
    progress = status["progress"]
    assert status["status"] == "cancelled"
    assert progress["cancelled"] > 0 and progress["done"] > 0
    assert progress["done"] + progress["cancelled"] + progress["failed"] == count
    assert sum(image_server.hits[p] for p in paths) == progress["done"], "no cancelled image fetched"
    outputs = output_urls(embedded_stack, status)
    assert sum(1 for o in outputs if o) == progress["done"], "the result CSV holds what was done"

    again = embedded_stack.http.request(
        "POST", f"{embedded_stack.base_url}/api/requests/{request_id}/cancel/"
    )
    assert again.status == 200, "repeating it is harmless"


def test_retry_after_the_host_recovers(embedded_stack: Stack, image_server: ImageServer) -> None:
    prefix = uuid.uuid4().hex
    good = image_server.add(f"{prefix}/good.jpg", photo((40, 30), "JPEG"))
    broken = image_server.add(f"{prefix}/broken.jpg", b"gone", "text/plain", 404)
    status = run(embedded_stack, catalogue_csv([good, broken]))
    assert (status["status"], status["progress"]["failed"]) == ("completed_with_errors", 1)
    failures = embedded_stack.get(str(status["failures_file"]))
    assert failures.status == 200
    rows = list(csv.reader(io.StringIO(failures.data.decode())))
    assert rows[1][:4] == ["2", "1", "2", broken] and "404" in rows[1][4]

    image_server.add(f"{prefix}/broken.jpg", photo((40, 30), "JPEG"))  # the host is back
    request_id = str(status["request_id"])
    resp = embedded_stack.http.request("POST", f"{embedded_stack.base_url}/api/requests/{request_id}/retry/")
    assert resp.status == 202, resp.data
    status = embedded_stack.wait_complete(request_id)
    assert status["status"] == "completed"
    assert (status["progress"]["done"], status["progress"]["failed"]) == (2, 0)
    assert all(output_urls(embedded_stack, status)), "the result CSV is made again, whole"
    assert image_server.hits[path_of(image_server, good)] == 1, "the image done before is not fetched again"


AGE = """
from datetime import timedelta
from django.utils import timezone
from catalog.models import ContentOutput, ProcessingRequest
long_ago = timezone.now() - timedelta(days=40)
ProcessingRequest.objects.filter(request_id="{request_id}").update(created_at=long_ago, completed_at=long_ago)
ContentOutput.objects.update(created_at=long_ago)
"""


def test_retention_keeps_what_is_still_referenced(embedded_stack: Stack, image_server: ImageServer) -> None:
    prefix = uuid.uuid4().hex
    urls = [
        image_server.add(f"{prefix}/{n}.jpg", photo((50 + n, 40), "JPEG"), validators=True) for n in range(3)
    ]
    old = run(embedded_stack, catalogue_csv(urls))
    kept = run(embedded_stack, catalogue_csv(urls[:2]))  # shares two of the old request's outputs
    old_outputs, kept_outputs = output_urls(embedded_stack, old), output_urls(embedded_stack, kept)
    assert kept_outputs == old_outputs[:2]

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=embedded_stack.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    manage("shell", "-c", AGE.format(request_id=old["request_id"]))
    purged = manage("purge", "--older-than", "30")
    assert "Removed 1 requests" in purged, purged

    gone = embedded_stack.http.request(
        "GET", f"{embedded_stack.base_url}/api/status/", fields={"request_id": str(old["request_id"])}
    )
    assert gone.status == 404
    assert embedded_stack.get(str(old["result_file"])).status == 404
    assert embedded_stack.get(old_outputs[2]).status == 404, "used by the old request only"
    assert embedded_stack.status(str(kept["request_id"]))["completed"]
    assert all(embedded_stack.get(url).status == 200 for url in kept_outputs), "still referenced: kept"
    assert embedded_stack.get(str(kept["result_file"])).status == 200


def test_the_command_line_retries_and_cancels(
    embedded_stack: Stack, image_server: ImageServer, tmp_path: Path
) -> None:
    prefix = uuid.uuid4().hex
    good = image_server.add(f"{prefix}/good.jpg", photo((40, 30), "JPEG"))
    broken = image_server.add(f"{prefix}/broken.jpg", b"gone", "text/plain", 404)
    status = run(embedded_stack, catalogue_csv([good, broken]))
    request_id = str(status["request_id"])
    image_server.add(f"{prefix}/broken.jpg", photo((40, 30), "JPEG"))  # the host is back

    output = tmp_path / "result.csv"
    retried = submit(embedded_stack, "--retry", request_id, "--output", str(output))
    assert retried.returncode == 0, retried.stderr
    assert f"Retrying the failed images of request {request_id}" in retried.stdout
    rows = list(csv.reader(io.StringIO(output.read_text())))
    assert all(rows[1][3].split(",")), "both outputs in the new result CSV"

    refused = submit(embedded_stack, "--cancel", request_id)
    assert refused.returncode == 1 and "already completed" in refused.stderr

    gate = threading.Event()
    held = [image_server.add(f"{prefix}/held{n}.jpg", photo((40, 30), "JPEG"), gate=gate) for n in range(40)]
    code, accepted = embedded_stack.upload(catalogue_csv(held))
    assert code == 202
    try:
        cancelled = submit(embedded_stack, "--cancel", str(accepted["request_id"]))
    finally:
        gate.set()
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"Cancelled request {accepted['request_id']}" in cancelled.stdout
    assert embedded_stack.wait_complete(str(accepted["request_id"]))["status"] == "cancelled"
