"""Serializers that only describe the API's bodies for the OpenAPI schema (drf-spectacular).

The views build their JSON directly; these say what that JSON is, field by field, so /api/docs/
documents every field and error shape of the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers

from catalog.models import OutputFormat, RequestStatus

if TYPE_CHECKING:
    _Serializer = serializers.Serializer[dict[str, Any]]
else:
    _Serializer = serializers.Serializer  # DRF's classes are not subscriptable at run time


class UploadForm(_Serializer):
    file = serializers.FileField(
        help_text="The CSV: S. No., Product Name, Input Image Urls (UTF-8; commas, semicolons or tabs); "
        "other columns are kept."
    )
    scale = serializers.FloatField(required=False, default=0.5, help_text="0 < scale <= 1")
    quality = serializers.IntegerField(required=False, default=50, min_value=1, max_value=100)
    output_format = serializers.ChoiceField(choices=OutputFormat.values, required=False, default="original")
    webhook_url = serializers.URLField(required=False, help_text="POSTed a signed JSON body on completion.")


class Accepted(_Serializer):
    status = serializers.CharField(default="accepted")
    request_id = serializers.UUIDField()
    status_url = serializers.URLField()


class Problem(_Serializer):
    line = serializers.IntegerField(
        allow_null=True, help_text="1-based line of the file; null for the whole file."
    )
    column = serializers.CharField(
        allow_null=True, help_text="The column's name; null for the whole file or row."
    )
    field = serializers.CharField(required=False, help_text="For a bad processing option: its form field.")
    message = serializers.CharField()


# "errors" is also the name of a Serializer property, so these two are built from field dicts.
Refused = inline_serializer(
    "Refused",
    {
        "status": serializers.CharField(default="error"),
        "errors": Problem(many=True),
        "errors_truncated": serializers.BooleanField(required=False),
    },
)


class Message(_Serializer):
    status = serializers.CharField(default="error")
    message = serializers.CharField()


class Progress(_Serializer):
    products = serializers.IntegerField()
    images = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    percent = serializers.IntegerField()


class ImageError(_Serializer):
    line = serializers.IntegerField()
    serial_number = serializers.IntegerField()
    url = serializers.URLField()
    position = serializers.IntegerField(help_text="1-based place of the URL in its product's cell.")
    message = serializers.CharField()


class Options(_Serializer):
    scale = serializers.FloatField()
    quality = serializers.IntegerField()
    output_format = serializers.ChoiceField(choices=OutputFormat.values)
    webhook_url = serializers.URLField(allow_null=True)


class WebhookAttempt(_Serializer):
    number = serializers.IntegerField()
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    duration_ms = serializers.IntegerField()


class WebhookDelivery(_Serializer):
    id = serializers.CharField(help_text="The webhook-id header.")
    url = serializers.URLField()
    status = serializers.ChoiceField(choices=["pending", "delivered", "failed"])
    attempts = WebhookAttempt(many=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


Status = inline_serializer(
    "Status",
    {
        "status": serializers.ChoiceField(choices=RequestStatus.values),
        "request_id": serializers.UUIDField(),
        "name": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "completed_at": serializers.DateTimeField(allow_null=True),
        "completed": serializers.BooleanField(help_text="True once every image has an output or an error."),
        "progress": Progress(),
        "options": Options(),
        "result_file": serializers.URLField(allow_null=True, help_text="The output CSV, once completed."),
        "errors": ImageError(many=True),
        "errors_truncated": serializers.BooleanField(),
        "status_url": serializers.URLField(),
        "webhooks": WebhookDelivery(many=True),
    },
)


upload_schema = extend_schema(
    summary="Upload a CSV of products",
    request={"multipart/form-data": UploadForm},
    responses={202: Accepted, 400: Refused, 413: Refused, 429: Message},
)

status_schema = extend_schema(
    summary="Progress, errors and result of a request",
    parameters=[OpenApiParameter("request_id", str, required=True, description="The UUID from the upload.")],
    responses={200: Status, 400: Message, 404: Message},
)
