"""The HTML pages through Django's test client: refusals on the page, who sees what, pagination.

The browser test (tests/e2e/test_browser.py) proves the pages work end to end; these pin details.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog import selectors
from catalog.models import ImageStatus, ProcessingRequest, ProductImage
from tests import spreadsheets

pytestmark = pytest.mark.django_db

GOOD = b"S. No.,Product Name,Input Image Urls\n1,Chair,https://img.example.com/a.jpg\n"


def post_csv(client: Client, body: bytes, **fields: str) -> Any:
    return client.post("/", {"file": SimpleUploadedFile("chairs.csv", body, "text/csv"), **fields})


def test_upload_page_has_a_labelled_form(client: Client) -> None:
    page = client.get("/").content.decode()
    for field in ("file", "scale", "quality", "output_format", "webhook_url"):
        assert f'<label for="{field}"' in page, f"{field} has a label"
        assert f'id="{field}"' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_a_refused_csv_is_listed_by_line_and_column_on_the_page(client: Client) -> None:
    body = GOOD + b"x,Table,https://img.example.com/b.jpg\n3,,ftp://img.example.com/c.jpg\n"
    body += b'4,Stool,"https://img.example.com/d.jpg, e.jpg"\n'
    response = post_csv(client, body)
    assert response.status_code == 400
    page = response.content.decode()
    assert "chairs.csv was not accepted" in page
    assert "<td>3</td><td>S. No.</td>" in page
    assert "<td>4</td><td>Product Name</td>" in page
    assert "<td>4</td><td>Input Image Urls</td>" in page
    assert "<td>5</td><td>Input Image Urls</td>" in page and "is not an absolute URL" in page
    assert ProcessingRequest.objects.count() == 0


def test_bad_options_are_named_and_kept(client: Client) -> None:
    response = post_csv(client, GOOD, quality="0", scale="0.25")
    assert response.status_code == 400
    page = response.content.decode()
    # Beside its field (named by it, marked invalid), not in the file's problem table.
    assert (
        '<span id="quality-error" class="field-error">'
        "must be a whole number from 1 to 100, or auto (not 0)</span>" in page
    )
    assert 'aria-describedby="quality-error quality-hint" aria-invalid="true"' in page
    assert "was not accepted" not in page and 'class="problems"' not in page
    assert 'value="0.25"' in page, "what the user typed stays in the form"


def test_no_file_is_a_clear_refusal(client: Client) -> None:
    response = client.post("/", {"quality": "50"})
    assert response.status_code == 400
    assert "Choose a CSV file to upload." in response.content.decode()


def test_an_accepted_upload_lands_on_its_page(client: Client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        response = post_csv(client, GOOD)
    assert response.status_code == 302
    request = ProcessingRequest.objects.get()
    assert response["Location"] == f"/requests/{request.request_id}/"
    page = client.get(response["Location"]).content.decode()
    assert "chairs.csv" in page and "Chair" in page and "https://img.example.com/a.jpg" in page
    listing = client.get("/requests/").content.decode()
    assert str(request.request_id) in listing
    live = client.get(f"/requests/progress/?ids={request.request_id},not-a-uuid").json()
    assert live[str(request.request_id)]["percent"] == 0


def test_failed_images_show_their_reason(client: Client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        post_csv(client, GOOD)
    request = ProcessingRequest.objects.get()
    ProductImage.objects.filter(request=request).update(
        status=ImageStatus.FAILED, error="HTTP 404 from host", error_code="not_found"
    )
    ProcessingRequest.objects.filter(pk=request.pk).update(images_failed=1)
    page = client.get(f"/requests/{request.request_id}/").content.decode()
    assert page.count("HTTP 404 from host") == 2, "in the failures list and on the product's row"
    assert '<strong class="code" data-code="not_found">not found</strong>' in page, "the code's label"
    status = client.get(f"/api/status/?request_id={request.request_id}").json()
    assert {(e["code"], e["message"]) for e in status["errors"]} == {("not_found", "HTTP 404 from host")}


def test_pages_need_a_login_when_auth_is_required(client: Client, settings) -> None:
    settings.REQUIRE_AUTH = True
    for path in ("/", "/requests/", f"/requests/{uuid.uuid4()}/", "/requests/progress/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/accounts/login/").status_code == 200


def test_another_users_request_is_not_found(
    client: Client, settings, django_capture_on_commit_callbacks
) -> None:
    settings.REQUIRE_AUTH = True
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=False):
        post_csv(client, GOOD)
    request = ProcessingRequest.objects.get()
    assert request.owner == alice
    assert client.get(f"/requests/{request.request_id}/").status_code == 200
    client.force_login(bob)
    assert client.get(f"/requests/{request.request_id}/").status_code == 404
    assert str(request.request_id) not in client.get("/requests/").content.decode()
    assert client.get(f"/requests/progress/?ids={request.request_id}").json() == {}


def test_products_are_paged(client: Client, django_capture_on_commit_callbacks) -> None:
    rows = "".join(f"{n},P{n},https://img.example.com/{n}.jpg\n" for n in range(1, 121))
    with django_capture_on_commit_callbacks(execute=False):
        post_csv(client, b"S. No.,Product Name,Input Image Urls\n" + rows.encode())
    request = ProcessingRequest.objects.get()
    page = client.get(f"/requests/{request.request_id}/?page=3").content.decode()
    assert "Page 3 of 3" in page and "P101" in page and "P120" in page and ">P100<" not in page
    products, page_shown, pages = selectors.product_rows(request, 99)
    assert (page_shown, pages) == (3, 3) and products[0].serial == "101", "past the end shows the last"


def test_requests_are_paged(client: Client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(3):
            post_csv(client, GOOD)
    newest_first = list(ProcessingRequest.objects.order_by("-created_at"))
    shown, page, pages = selectors.requests_page(None, 2, per_page=2)
    assert (page, pages) == (2, 2) and shown == newest_first[2:]
    assert "Page 1 of 1" not in client.get("/requests/").content.decode(), "one page: no pager"


def test_a_semicolon_excel_export_is_accepted_and_its_other_columns_shown(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        response = post_csv(client, spreadsheets.excel_csv_utf8(spreadsheets.catalogue()))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "<dt>Brand</dt><dd>Acme</dd>" in page
    assert "<dt>Price</dt><dd>12,50</dd>" in page
    assert "<dt>Brand</dt><dd>Bois;Fer</dd>" in page
    assert "https://xn--bcher-kva.example/d.jpg" in page, "the host as it is fetched"
    assert "https://img.example.com/b%20b.png" in page


def test_downloads_and_comparisons_follow_the_owner_rule(
    client: Client, settings, django_capture_on_commit_callbacks
) -> None:
    settings.REQUIRE_AUTH = True
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=False):
        response = post_csv(client, GOOD)
    request = ProcessingRequest.objects.get()
    request.result_file = "results/nothing-here.csv"
    request.save(update_fields=["result_file"])
    paths = [
        f"/requests/{request.request_id}/result.csv",
        f"/requests/{request.request_id}/images.zip",
        f"/requests/{request.request_id}/compare/1/1/",
    ]
    assert client.get(paths[2]).status_code == 200, "the owner sees the comparison (pending here)"
    client.force_login(bob)
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert b"Not found" in answer.content, "the site's own 404 page"
    client.logout()
    assert client.get(paths[0]).status_code == 302, "signed out: to the login page"
    assert response.status_code == 302


def test_quality_per_image_is_shown_with_its_warning(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        post_csv(client, GOOD, quality="auto", max_bytes="5000", output_format="auto")
    request = ProcessingRequest.objects.get()
    ProductImage.objects.filter(request=request).update(
        status=ImageStatus.DONE,
        output_file="outputs/x/1-0.webp",
        output_format="WEBP",
        output_bytes=6100,
        output_quality=12,
        output_score=0.98123,
        warning="no output fits max_bytes=5000: the smallest is 6100 bytes (WEBP quality 1)",
    )
    page = client.get(f"/requests/{request.request_id}/").content.decode()
    assert "quality auto (target 0.992), at most 5000 bytes an image" in page
    assert "WEBP q12 · MS-SSIM 0.9812" in page
    assert "<strong>Warning:</strong> no output fits max_bytes=5000" in page
