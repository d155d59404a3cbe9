"""Every read the API and pages make. Status comes from our own tables, never the broker."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from catalog import webhooks
from catalog.models import ImageStatus, ProcessingRequest, ProductImage
from catalog.storage import absolute_url

MAX_ERRORS_SHOWN = 1000


def visible_requests(user: User | AnonymousUser | None) -> QuerySet[ProcessingRequest]:
    """With REQUIRE_AUTH each user sees their own requests only (staff see all)."""
    requests = ProcessingRequest.objects.all()
    if not settings.REQUIRE_AUTH or (user is not None and user.is_staff):
        return requests
    if user is None or not user.is_authenticated:
        return requests.none()
    return requests.filter(owner=user)


def find_request(request_id: uuid.UUID, user: User | AnonymousUser | None) -> ProcessingRequest | None:
    return visible_requests(user).filter(request_id=request_id).first()


def status_url(request: ProcessingRequest) -> str:
    return f"{request.base_url}/api/status/?request_id={request.request_id}"


def progress(request: ProcessingRequest) -> dict[str, int]:
    """From the request's counters: a poll costs one row read, however many images there are."""
    settled = request.images_settled
    percent = (
        100 if request.completed else (settled * 100 // request.images_total if request.images_total else 0)
    )
    return {
        "products": request.products_total,
        "images": request.images_total,
        "done": request.images_done,
        "failed": request.images_failed,
        "percent": percent,
    }


def image_errors(request: ProcessingRequest, limit: int = MAX_ERRORS_SHOWN) -> list[dict[str, Any]]:
    failed = (
        ProductImage.objects.filter(request=request, status=ImageStatus.FAILED)
        .order_by("product__line", "position")
        .values("product__line", "product__serial_number", "input_url", "error", "position")[:limit]
    )
    return [
        {
            "line": row["product__line"],
            "serial_number": row["product__serial_number"],
            "url": row["input_url"],
            "position": row["position"] + 1,
            "message": row["error"],
        }
        for row in failed
    ]


def status_payload(request: ProcessingRequest) -> dict[str, Any]:
    errors = image_errors(request) if request.images_failed else []
    return {
        "status": request.status,
        "request_id": str(request.request_id),
        "name": request.name,
        "created_at": request.created_at,
        "started_at": request.started_at,
        "completed_at": request.completed_at,
        "completed": request.completed,
        "progress": progress(request),
        "options": {
            "scale": request.scale,
            "quality": request.quality,
            "output_format": request.output_format,
            "webhook_url": request.webhook_url or None,
        },
        "result_file": absolute_url(request.result_file, request.base_url) if request.result_file else None,
        "errors": errors,
        "errors_truncated": request.images_failed > len(errors),
        "status_url": status_url(request),
        "webhooks": webhooks.delivery_log(request) if request.webhook_url else [],
    }
