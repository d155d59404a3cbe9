"""HTML pages for people: upload a CSV, watch requests, look at one request's images.

The pages read through selectors and write through services, exactly as the API does; the upload
form validates its options with the API's own serializer, so both refuse the same things alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.throttling import ScopedRateThrottle

from catalog import selectors, services
from catalog.api import UploadOptionsSerializer, accept_csv, error_items
from catalog.models import OutputFormat
from sansio import quality as per_image

View = Callable[..., HttpResponse]
FAILURES_SHOWN = 100  # on a request's page; the status API lists up to selectors.MAX_ERRORS_SHOWN


def people_only(view: View) -> View:
    """With REQUIRE_AUTH the pages want a signed-in user, as the API wants a token."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.REQUIRE_AUTH and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
    return wrapped


class _UploadScope:
    throttle_scope = "upload"  # the API's budget: the page is no way around it


def _message(text: str) -> dict[str, Any]:
    return {"line": None, "column": None, "message": text}


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
        "max_mb": f"{settings.CSV_MAX_BYTES / (1024 * 1024):g}",
        "errors": [],
    }
    if request.method != "POST":
        return render(request, "catalog/upload.html", context)

    context["values"] |= {k: request.POST.get(k, v) for k, v in context["values"].items()}
    if not ScopedRateThrottle().allow_request(request, _UploadScope()):  # type: ignore[arg-type]
        context["errors"] = [_message("Too many uploads just now: wait a minute and try again.")]
        return render(request, "catalog/upload.html", context, status=429)
    upload = request.FILES.get("file")
    context["file_name"] = upload.name if upload else ""
    options = UploadOptionsSerializer(data=request.POST)
    if upload is None:
        context["errors"] = [_message("Choose a CSV file to upload.")]
    elif upload.size is not None and upload.size > settings.CSV_MAX_BYTES:
        context["errors"] = [_message(f"{upload.name} is over the {context['max_mb']} MB limit.")]
    elif not options.is_valid():
        context["errors"] = [
            _message(f"{field.replace('_', ' ').capitalize()}: {message}")
            for field, messages in options.errors.items()
            for message in messages
        ]
    if context["errors"]:
        return render(request, "catalog/upload.html", context, status=400)
    assert upload is not None
    try:
        created = accept_csv(request, upload, options)
    except services.CatalogueRejected as exc:
        context["errors"] = error_items(exc.problems)
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


@require_GET
@people_only
def request_detail(request: HttpRequest, request_id: uuid.UUID) -> HttpResponse:
    found = selectors.find_request(request_id, request.user)
    if found is None:
        raise Http404(f"no request with request_id {request_id}")
    products, page, pages = selectors.product_rows(found, _page_number(request))
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
        "page": page,
        "pages": pages,
    }
    return render(request, "catalog/request.html", context)


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
