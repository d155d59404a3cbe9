"""Idempotency-Key on uploads, through Django's test client (the end-to-end path is in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from catalog.models import IdempotentUpload, ProcessingRequest

pytestmark = pytest.mark.django_db

GOOD = b"S. No.,Product Name,Input Image Urls\n1,SKU1,https://img.example.com/a.jpg\n"
OTHER = b"S. No.,Product Name,Input Image Urls\n1,SKU1,https://img.example.com/b.jpg\n"


def upload(client: Client, body: bytes, key: str | None, **fields: str) -> tuple[int, dict[str, Any]]:
    headers = {} if key is None else {"Idempotency-Key": key}
    response = client.post(
        "/api/upload/", {"file": SimpleUploadedFile("c.csv", body, "text/csv"), **fields}, headers=headers
    )
    return response.status_code, response.json()


def test_same_key_and_body_gives_the_first_answer_and_queues_nothing(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as first_callbacks:
        code, first = upload(client, GOOD, "order-42")
    with django_capture_on_commit_callbacks(execute=False) as again_callbacks:
        again_code, again = upload(client, GOOD, "order-42")
    assert (code, again_code) == (202, 202)
    assert again == first
    assert len(first_callbacks) == 1 and again_callbacks == []
    assert ProcessingRequest.objects.count() == 1


def test_leaving_out_an_option_is_the_same_as_sending_its_default(client: Client) -> None:
    _, first = upload(client, GOOD, '"k1"')  # the draft's quoted form is the same key
    code, again = upload(client, GOOD, "k1", scale="0.5")
    assert code == 202 and again["request_id"] == first["request_id"]


@pytest.mark.parametrize(("body", "fields"), [(OTHER, {}), (GOOD, {"quality": "80"})])
def test_same_key_other_file_or_options_is_422(client: Client, body: bytes, fields: dict[str, str]) -> None:
    upload(client, GOOD, "k2")
    code, answer = upload(client, body, "k2", **fields)
    assert code == 422
    assert "different file or options" in answer["errors"][0]["message"]
    assert ProcessingRequest.objects.count() == 1


def test_a_duplicate_while_the_first_is_being_accepted_is_409(client: Client) -> None:
    upload(client, GOOD, "k3")
    # As it was while the first upload was being accepted: its key row taken, not yet bound.
    IdempotentUpload.objects.update(request=None)
    code, answer = upload(client, GOOD, "k3")
    assert code == 409
    assert "still being accepted" in answer["errors"][0]["message"]
    assert ProcessingRequest.objects.count() == 1


def test_a_refused_file_frees_its_key(client: Client) -> None:
    code, _ = upload(client, b"S. No.,Product Name\n1,x\n", "k4")
    assert code == 400
    code, _ = upload(client, GOOD, "k4")
    assert code == 202


def test_keys_expire_after_24_hours(client: Client) -> None:
    _, first = upload(client, GOOD, "k5")
    IdempotentUpload.objects.update(created_at=timezone.now() - timedelta(hours=25))
    code, again = upload(client, GOOD, "k5")
    assert code == 202 and again["request_id"] != first["request_id"]


def test_an_abandoned_first_upload_frees_its_key_after_a_while(client: Client) -> None:
    IdempotentUpload.objects.create(
        client="ip:127.0.0.1", key="k6", fingerprint="x", created_at=timezone.now() - timedelta(hours=1)
    )
    assert upload(client, GOOD, "k6")[0] == 202


def test_keys_are_per_client(client: Client) -> None:
    _, first = upload(client, GOOD, "k7")
    other = Client(REMOTE_ADDR="10.1.2.3")
    code, answer = upload(other, OTHER, "k7")
    assert code == 202 and answer["request_id"] != first["request_id"]


@pytest.mark.parametrize("key", ["", "with space", "é", "x" * 256])
def test_bad_keys_are_refused_with_a_reason(client: Client, key: str) -> None:
    code, answer = upload(client, GOOD, key)
    assert code == 400
    assert "Idempotency-Key" in answer["errors"][0]["message"]
    assert ProcessingRequest.objects.count() == 0
