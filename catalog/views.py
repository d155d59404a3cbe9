"""HTML pages for people: upload a CSV, watch requests, look at one request's images.

The pages read through selectors and write through services, exactly as the API does, and never
call the API: the upload form checks its options with the serializer the API uses too
(catalog/uploads.py), so both refuse the same things alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.throttling import ScopedRateThrottle

from catalog import downloads, selectors, services
from catalog.models import OutputFormat, ProcessingRequest
from catalog.services import lifecycle, previews
from catalog.storage import absolute_url
from catalog.uploads import UploadOptionsSerializer, problem_item, problem_items
from sansio import quality as per_image
from sansio import samples
from sansio.sizes import human_size

View = Callable[..., HttpResponseBase]
FAILURES_SHOWN = 100  # on a request's page; the status API lists up to selectors.MAX_ERRORS_SHOWN


def people_only(view: View) -> View:
    """With REQUIRE_AUTH the pages want a signed-in user, as the API wants a token."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if settings.REQUIRE_AUTH and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
    return wrapped


class _UploadScope:
    throttle_scope = "upload"  # the API's budget: the page is no way around it


@require_http_methods(["GET", "POST"])
@people_only
def upload(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "nav": "upload",
        "formats": OutputFormat.choices,
        "values": {
            **{"scale": "0.5", "quality": "50", "output_format": "original", "webhook_url": ""},
            **{"quality_target": "", "max_bytes": ""},
        },
        "webhooks_enabled": bool(settings.WEBHOOK_SECRET),
        "max_size": human_size(settings.CSV_MAX_BYTES),
        "errors": [],
        "field_errors": {},
    }
    if request.method != "POST":
        return render(request, "catalog/upload.html", context)

    context["values"] |= {k: request.POST.get(k, v) for k, v in context["values"].items()}
    if not ScopedRateThrottle().allow_request(request, _UploadScope()):  # type: ignore[arg-type]
        context["errors"] = [problem_item("Too many uploads just now: wait a minute and try again.")]
        return render(request, "catalog/upload.html", context, status=429)
    upload = request.FILES.get("file")
    context["file_name"] = upload.name if upload else ""
    options = UploadOptionsSerializer(data=request.POST)
    if upload is None:
        context["errors"] = [problem_item("Choose a CSV file to upload.")]
    elif upload.size is not None and upload.size > settings.CSV_MAX_BYTES:
        context["errors"] = [problem_item(f"{upload.name} is over the {context['max_size']} limit.")]
    elif not options.is_valid():
        # Beside their fields, not in the file's problem table: the file was not even read.
        context["field_errors"] = {field: " ".join(messages) for field, messages in options.errors.items()}
        return render(request, "catalog/upload.html", context, status=400)
    if context["errors"]:
        return render(request, "catalog/upload.html", context, status=400)
    assert upload is not None
    try:
        created = services.accept_upload(
            upload, dict(options.validated_data), user=request.user, site_url=request.build_absolute_uri("/")
        )
    except services.CatalogueRejected as exc:
        context["errors"] = problem_items(exc.problems)
        context["errors_truncated"] = exc.truncated
        return render(request, "catalog/upload.html", context, status=400)
    return redirect("request-detail", request_id=created.request_id)


@require_GET
@people_only
def request_list(request: HttpRequest) -> HttpResponse:
    requests, page, pages = selectors.requests_page(request.user, _page_number(request))
    rows = [{"request": r, "progress": selectors.progress(r)} for r in requests]
    live = [str(r.request_id) for r in requests if not r.completed]
    context = {"rows": rows, "live": live, "nav": "requests", "page": page, "pages": pages}
    return render(request, "catalog/requests.html", context)


def _page_number(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("page", "1"))
    except ValueError:
        return 1


def _visible(request: HttpRequest, request_id: uuid.UUID) -> ProcessingRequest:
    """The request as this user may see it (someone else's is unknown with REQUIRE_AUTH), or 404."""
    found = selectors.find_request(request_id, request.user)
    if found is None:
        raise Http404(f"no request with request_id {request_id}")
    return found


@require_GET
@people_only
def request_detail(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    found = _visible(request, request_id)
    failed_only = request.GET.get("show") == "failed"
    products, page, pages = selectors.product_rows(found, _page_number(request), failed_only=failed_only)
    # Only what the page shows: it is fetched again on every change while the request runs.
    status = {
        "progress": selectors.progress(found),
        "errors": selectors.image_errors(found, limit=FAILURES_SHOWN) if found.images_failed else [],
        "result_file": selectors.result_url(found),
    }
    context = {
        "nav": "requests",
        "req": found,
        "status": status,
        "failures_shown": FAILURES_SHOWN,
        "default_target": per_image.DEFAULT_TARGET,
        "totals": selectors.byte_totals(found),
        "products": products,
        "failed_only": failed_only,
        "page": page,
        "pages": pages,
    }
    return render(request, "catalog/request.html", context)


@require_GET
@people_only
def compare(request: HttpRequest, request_id: uuid.UUID, serial_number: int, position: int) -> HttpResponse:
    """One image before and after, side by side at a size where compression shows."""
    found = _visible(request, request_id)
    compared = selectors.compared_image(found, serial_number, position)
    if compared is None:
        raise Http404(f"no image {position} of product {serial_number} in request {request_id}")
    product, row, image = compared
    context: dict[str, Any] = {"nav": "requests", "req": found, "product": product, "image": row}
    if row.output_url and settings.IMAGE_PREVIEW_SIZE:
        try:
            context["before_url"] = absolute_url(previews.before_picture_name(image), found.base_url)
        except previews.BeforeUnavailable as exc:
            context["before_missing"] = str(exc)
    return render(request, "catalog/compare.html", context)


@require_GET
@people_only
def result_csv(request: HttpRequest, request_id: uuid.UUID) -> HttpResponseBase:
    """The result CSV as a download named after the upload (``chairs.csv`` → ``chairs-result.csv``)."""
    found = _visible(request, request_id)
    if not found.result_file:
        raise Http404(f"request {request_id} has no result CSV yet")
    return FileResponse(
        default_storage.open(found.result_file, "rb"),
        as_attachment=True,
        filename=downloads.result_file_name(found.name),
        content_type="text/csv; charset=utf-8",
    )


@require_GET
@people_only
def outputs_zip(request: HttpRequest, request_id: uuid.UUID) -> HttpResponseBase:
    """Every output of a request and its result CSV in one ZIP, streamed as it is written."""
    found = _visible(request, request_id)
    response = StreamingHttpResponse(downloads.zip_chunks(found), content_type="application/zip")
    name = downloads.zip_file_name(found.name)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name) or ""
    return response


@require_GET
def sample_image(request: HttpRequest, name: str) -> HttpResponse:
    """The sample catalogue's images (`manage.py demo`), drawn on the fly; development only."""
    if not settings.SAMPLE_IMAGES:
        raise Http404("sample images are off (SAMPLE_IMAGES)")
    if name == samples.NOT_AN_IMAGE:
        return HttpResponse(samples.NOT_AN_IMAGE_BODY, content_type="text/plain; charset=utf-8")
    found = samples.sample_image(name)
    if found is None:
        raise Http404(f"no sample image {name}")
    data, content_type = found
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_GET
@people_only
def live_progress(request: HttpRequest) -> JsonResponse:
    """Progress of the listed requests, one query per poll (the list page's live bars)."""
    ids = []
    for raw in request.GET.get("ids", "").split(",")[: selectors.REQUESTS_PER_PAGE]:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    return JsonResponse(selectors.live_progress(request.user, ids))


def _change_request(
    request: HttpRequest,
    request_id: uuid.UUID,
    change: Callable[[ProcessingRequest], ProcessingRequest],
    done: str,
    refused: str,
) -> HttpResponse:
    """A button on the request page: the same service as the API's, then back to the page."""
    found = _visible(request, request_id)
    try:
        change(found)
        messages.success(request, done)
    except lifecycle.LifecycleRefused as exc:
        messages.error(request, f"{refused}: {exc}.")
    return redirect("request-detail", request_id=request_id)


@require_POST
@people_only
def cancel_request(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    """The Cancel button (the page asks for a confirmation first)."""
    done = "Cancelled: images not yet started will not be processed."
    return _change_request(request, request_id, lifecycle.cancel_request, done, "Not cancelled")


@require_POST
@people_only
def retry_request(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    """The Retry button: the failed images are queued again."""
    done = "The failed images are queued again."
    return _change_request(request, request_id, lifecycle.retry_request, done, "Not retried")
