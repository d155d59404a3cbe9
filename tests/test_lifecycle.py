"""Cancel, retry and the failures CSV, through the services and the API (no worker: see tests/e2e)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog import services
from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus, WebhookDelivery
from sansio.reasons import Reason

pytestmark = pytest.mark.django_db

CSV = (
    b"S. No.,Product Name,Input Image Urls\n"
    b'1,SKU1,"https://img.example.com/a.jpg,https://img.example.com/b.jpg"\n'
    b"2,=SKU2,https://img.example.com/c.jpg\n"
    b"3,SKU3,https://img.example.com/a.jpg\n"
)


@pytest.fixture(autouse=True)
def _storage(media: Path) -> None:
    pass


@pytest.fixture
def request_pk(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=False):
        created = services.create_request(
            io.BytesIO(CSV),
            name="c.csv",
            options=services.RequestOptions(webhook_url="https://hooks.example.com/x"),
            base_url="http://testserver",
        )
    services.start_request(created.pk)
    return created.pk


def request_id(pk: int) -> str:
    return str(ProcessingRequest.objects.values_list("request_id", flat=True).get(pk=pk))


def originals(pk: int) -> list[int]:
    images = ProductImage.objects.filter(request_id=pk, duplicate_of__isnull=True).order_by("pk")
    return list(images.values_list("pk", flat=True))


def output(name: str) -> services.ImageOutput:
    return services.ImageOutput(name, "JPEG", 100, 50, (10, 10), (5, 5))


def result_rows(tmp_path: Path, pk: int) -> list[list[str]]:
    request = ProcessingRequest.objects.get(pk=pk)
    return list(csv.reader(io.StringIO((tmp_path / request.result_file).read_text())))


def failure(message: str, code: Reason) -> services.ImageFailed:
    return services.ImageFailed(message, code=code, retryable=False)


def test_cancel_mid_request_completes_as_cancelled_with_what_was_done(
    request_pk: int, client: Client, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    a, b, c = originals(request_pk)
    [running] = services.claim_images([a])  # a worker has started image a
    url = f"/api/requests/{request_id(request_pk)}/cancel/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["completed"]) == ("cancelled", False), "image a is still running"
    assert body["progress"]["cancelled"] == 3, "b, c and the copy of a waiting for it"
    assert callbacks == [], "not finalized while an image runs"
    assert services.claim_images([b, c]) == [], "workers do not take cancelled images"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.settle([(running, output("outputs/a.jpg"))], [], [])
    assert len(callbacks) == 2, "the finalize task is enqueued (and the metrics count the image)"
    assert services.finalize_request(request_pk)
    request = ProcessingRequest.objects.get(pk=request_pk)
    assert (request.status, request.completed) == (RequestStatus.CANCELLED, True)
    assert (request.images_done, request.images_failed, request.images_cancelled) == (1, 0, 3)
    rows = result_rows(tmp_path, request_pk)
    assert rows[1][3] == "http://testserver/media/outputs/a.jpg,"
    assert rows[2][3] == "" and rows[3][3] == ""
    assert WebhookDelivery.objects.filter(request_id=request_pk).count() == 1

    assert client.post(url).status_code == 200, "cancelling again is harmless"


def test_cancelling_twice_is_harmless(
    request_pk: int, client: Client, django_capture_on_commit_callbacks
) -> None:
    url = f"/api/requests/{request_id(request_pk)}/cancel/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = client.post(url)
        again = client.post(url)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["progress"]["cancelled"] == 4
    assert len(callbacks) == 1, "one finalize"


def test_retry_queues_the_failed_images_again_and_completes_anew(
    request_pk: int, client: Client, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    a, b, c = originals(request_pk)
    claims = services.claim_images([a, b, c])
    with django_capture_on_commit_callbacks(execute=False):
        services.settle(
            [(claims[1], output("outputs/b.jpg"))],
            [(claims[0], failure("HTTP 503 from img", Reason.HTTP_ERROR))],
            [],
        )
        services.settle([], [(claims[2], failure("HTTP 404 from img.example.com", Reason.NOT_FOUND))], [])
    services.finalize_request(request_pk)
    first_delivery = WebhookDelivery.objects.get(request_id=request_pk)
    url = f"/api/requests/{request_id(request_pk)}/retry/"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url)
    assert response.status_code == 202
    assert response.json()["request_id"] == request_id(request_pk)
    assert len(callbacks) == 1, "dispatched again"
    request = ProcessingRequest.objects.get(pk=request_pk)
    assert (request.status, request.completed, request.result_file) == (RequestStatus.PROCESSING, False, "")
    assert (request.images_done, request.images_failed) == (1, 0)
    queued = ProductImage.objects.filter(request_id=request_pk, status=ImageStatus.QUEUED)
    assert set(queued.values_list("attempts", flat=True)) == {0}, "a fresh attempt budget"
    assert queued.count() == 3, "a, its copy in row 3, and c"
    assert client.post(url).status_code == 409, "still processing"

    again = services.claim_images([a, c])
    with django_capture_on_commit_callbacks(execute=False):
        services.settle([(again[0], output("outputs/a.jpg")), (again[1], output("outputs/c.jpg"))], [], [])
    assert services.finalize_request(request_pk)
    request.refresh_from_db()
    assert (request.status, request.images_done, request.images_failed) == (RequestStatus.COMPLETED, 4, 0)
    assert result_rows(tmp_path, request_pk)[3][3] == "http://testserver/media/outputs/a.jpg"
    deliveries = WebhookDelivery.objects.filter(request_id=request_pk).exclude(pk=first_delivery.pk)
    assert deliveries.count() == 1, "a second webhook"
    assert deliveries.get().message_id != first_delivery.message_id
    first_body, second_body = json.loads(first_delivery.body), json.loads(deliveries.get().body)
    assert (first_body["status"], second_body["status"]) == ("completed_with_errors", "completed")
    assert second_body["progress"] | {"done": 0} == {
        **{"products": 3, "images": 4, "done": 0, "failed": 0},
        **{"cancelled": 0, "reused": 0},
    }
    assert client.post(url).status_code == 409, "nothing failed"
    cancel = client.post(f"/api/requests/{request_id(request_pk)}/cancel/")
    assert cancel.status_code == 409, "a completed request cannot be cancelled"
    assert "already completed" in cancel.json()["message"]


def test_failures_csv_lists_each_failed_image(
    request_pk: int, client: Client, django_capture_on_commit_callbacks
) -> None:
    a, b, c = originals(request_pk)
    claims = services.claim_images([a, b, c])
    with django_capture_on_commit_callbacks(execute=False):
        services.settle(
            [(claims[1], output("outputs/b.jpg"))],
            [(claims[0], failure("HTTP 404 from img", Reason.NOT_FOUND))],
            [],
        )
        services.settle([], [(claims[2], failure("=HYPERLINK(1)", Reason.DAMAGED))], [])
    response = client.get(
        f"/api/requests/{request_id(request_pk)}/failures.csv", headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined]
    assert rows[0] == ["line", "serial_number", "position", "url", "reason", "code"]
    assert rows[1:] == [
        ["2", "1", "1", "https://img.example.com/a.jpg", "HTTP 404 from img", "not_found"],
        ["3", "2", "1", "https://img.example.com/c.jpg", "'=HYPERLINK(1)", "damaged"],
        ["4", "3", "1", "https://img.example.com/a.jpg", "HTTP 404 from img", "not_found"],
    ]
    status = client.get(f"/api/status/?request_id={request_id(request_pk)}").json()
    assert status["failures_file"].endswith(f"/api/requests/{request_id(request_pk)}/failures.csv")


@pytest.mark.parametrize("action", ["cancel/", "retry/", "failures.csv"])
def test_unknown_and_other_peoples_requests_are_404(
    request_pk: int, client: Client, settings, action: str
) -> None:
    method = client.get if action.endswith(".csv") else client.post
    assert method(f"/api/requests/{uuid.uuid4()}/{action}").status_code == 404
    assert method(f"/api/requests/not-a-uuid/{action}").status_code == 404
    settings.REQUIRE_AUTH = True
    ProcessingRequest.objects.filter(pk=request_pk).update(owner=User.objects.create_user("alice"))
    bob = Token.objects.create(user=User.objects.create_user("bob"))
    other = method(
        f"/api/requests/{request_id(request_pk)}/{action}", headers={"Authorization": f"Token {bob.key}"}
    )
    assert other.status_code == 404
    assert ProcessingRequest.objects.get(pk=request_pk).status == RequestStatus.PROCESSING


def test_the_request_page_buttons(
    request_pk: int, client: Client, django_capture_on_commit_callbacks
) -> None:
    page = f"/requests/{request_id(request_pk)}/"
    html = client.get(page).content.decode()
    assert "data-cancel" in html and "confirm(" in html and "data-retry" not in html
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"{page}cancel/", follow=True)
    assert response.status_code == 200
    assert "Cancelled: images not yet started" in response.content.decode()
    assert ProcessingRequest.objects.get(pk=request_pk).status == RequestStatus.CANCELLED
