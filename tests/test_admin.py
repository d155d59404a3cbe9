"""The admin's cancel and retry actions go through the same services as the API (services/lifecycle)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus

pytestmark = pytest.mark.django_db

GOOD = b"S. No.,Product Name,Input Image Urls\n1,SKU1,https://img.example.com/a.jpg\n"


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "a long password"))
    return client


def upload(client: Client, django_capture_on_commit_callbacks) -> ProcessingRequest:
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/api/upload/", {"file": SimpleUploadedFile("c.csv", GOOD, "text/csv")})
    assert response.status_code == 202, response.content
    return ProcessingRequest.objects.get()


def act(client: Client, action: str, request: ProcessingRequest) -> str:
    response = client.post(
        "/admin/catalog/processingrequest/",
        {"action": action, "_selected_action": [str(request.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_cancel_from_the_admin_cancels_through_the_service(
    staff: Client, django_capture_on_commit_callbacks
) -> None:
    request = upload(staff, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        page = act(staff, "cancel", request)
    assert "1 request cancelled." in page
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert ProductImage.objects.filter(request=request, status=ImageStatus.CANCELLED).count() == 1


def test_retry_from_the_admin_says_why_it_cannot(staff: Client, django_capture_on_commit_callbacks) -> None:
    request = upload(staff, django_capture_on_commit_callbacks)
    page = act(staff, "retry", request)
    assert "queued again" not in page, "a request still running has nothing to retry"
    request.refresh_from_db()
    assert request.status != RequestStatus.CANCELLED


def test_the_request_page_in_the_admin_has_nothing_to_save(
    staff: Client, django_capture_on_commit_callbacks
) -> None:
    request = upload(staff, django_capture_on_commit_callbacks)
    page = staff.get(f"/admin/catalog/processingrequest/{request.pk}/change/").content.decode()
    assert 'name="_save"' not in page and '<input type="text"' not in page
