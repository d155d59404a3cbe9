"""Serializers that only describe the API's bodies for the OpenAPI schema (drf-spectacular).

The views build their JSON directly; these say what that JSON is, field by field, so /api/docs/
documents every field and error shape of the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers

from catalog.models import OutputFormat, RequestStatus
from catalog.uploads import DictSerializer
from sansio.reasons import Reason


# A file picker in Swagger UI's "Try it out" (a plain FileField is typed string($uri): a text box).
@extend_schema_field({"type": "string", "format": "binary"})
class CsvFile(serializers.FileField):
    pass


# No "string" pre-filled in "Try it out": an empty example leaves the box empty (it is optional).
@extend_schema_field({"type": "string", "format": "uri", "example": ""})
class OptionalUrl(serializers.URLField):
    pass


# The same for the optional numbers: Swagger UI would fill in 0, which the upload refuses.
@extend_schema_field({"type": "number", "example": ""})
class OptionalNumber(serializers.FloatField):
    pass


@extend_schema_field({"type": "integer", "minimum": 1, "example": ""})
class OptionalWholeNumber(serializers.IntegerField):
    pass


class UploadForm(DictSerializer):
    file = CsvFile(
        help_text="The CSV: S. No., Product Name, Input Image Urls (UTF-8; commas, semicolons or tabs); "
        "other columns are kept."
    )
    scale = serializers.FloatField(required=False, default=0.5, help_text="0 < scale <= 1")
    quality = serializers.CharField(
        required=False,
        default="50",
        help_text="1-100, or auto: per image, the lowest reaching quality_target",
    )
    quality_target = OptionalNumber(
        required=False, help_text="MS-SSIM (MAD pooling) target of quality=auto, 0.5-0.9999; default 0.992"
    )
    max_bytes = OptionalWholeNumber(
        required=False, min_value=1, help_text="Byte budget per output image: the highest quality that fits"
    )
    output_format = serializers.ChoiceField(
        choices=OutputFormat.values,
        required=False,
        default="original",
        help_text='original: the same as the input (the pages say "Same as the input"); auto: the smallest '
        "of JPEG, WebP, AVIF (PNG, lossless WebP) at the target; or a format.",
    )
    webhook_url = OptionalUrl(
        required=False, help_text="Optional: POSTed a signed JSON body on completion. Leave empty for none."
    )


class Accepted(DictSerializer):
    status = serializers.CharField(default="accepted")
    request_id = serializers.UUIDField()
    status_url = serializers.URLField()


class Problem(DictSerializer):
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


class Message(DictSerializer):
    status = serializers.CharField(default="error")
    message = serializers.CharField()


class Progress(DictSerializer):
    products = serializers.IntegerField()
    images = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField(help_text="Images not processed because the request was cancelled.")
    reused = serializers.IntegerField(
        help_text="Images done with an output made before: unchanged at their host, or identical bytes."
    )
    percent = serializers.IntegerField()


class ImageError(DictSerializer):
    line = serializers.IntegerField()
    serial_number = serializers.IntegerField()
    url = serializers.URLField()
    position = serializers.IntegerField(help_text="1-based place of the URL in its product's cell.")
    message = serializers.CharField()
    code = serializers.ChoiceField(
        choices=[reason.value for reason in Reason],
        allow_null=True,
        help_text="Why, as a fixed code (see the README's reasons); null for failures recorded before codes.",
    )


class Options(DictSerializer):
    scale = serializers.FloatField()
    quality = serializers.CharField(help_text="A number 1-100, or auto")
    quality_target = serializers.FloatField(allow_null=True)
    max_bytes = serializers.IntegerField(allow_null=True)
    output_format = serializers.ChoiceField(choices=OutputFormat.values)
    webhook_url = serializers.URLField(allow_null=True)


class ImageResult(DictSerializer):
    line = serializers.IntegerField()
    serial_number = serializers.IntegerField()
    position = serializers.IntegerField(help_text="1-based place of the URL in its product's cell.")
    url = serializers.URLField()
    output_url = serializers.URLField()
    format = serializers.CharField(help_text="jpeg, png, webp, gif or avif")
    quality = serializers.IntegerField(allow_null=True, help_text="Encoder quality; null for lossless.")
    score = serializers.FloatField(allow_null=True, help_text="MS-SSIM reached, where searched.")
    bytes = serializers.IntegerField()
    warning = serializers.CharField(allow_null=True, help_text="e.g. no output fits max_bytes")


class WebhookAttempt(DictSerializer):
    number = serializers.IntegerField()
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    duration_ms = serializers.IntegerField()


class WebhookDelivery(DictSerializer):
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
        "failures_file": serializers.URLField(
            allow_null=True, help_text="CSV of the failed images (line, serial, position, URL, reason)."
        ),
        "errors": ImageError(many=True),
        "errors_truncated": serializers.BooleanField(),
        "images": ImageResult(many=True, help_text="Images done: format, quality and score chosen."),
        "images_truncated": serializers.BooleanField(),
        "status_url": serializers.URLField(),
        "webhooks": WebhookDelivery(many=True),
    },
)


# The operations, in the order people use them (SORT_OPERATIONS is off): upload, then status. The
# cancel and retry endpoints (issue 13) get their extend_schema here, after status.
upload_schema = extend_schema(
    summary="Upload a CSV of products",
    request={"multipart/form-data": UploadForm},
    parameters=[
        OpenApiParameter(
            "Idempotency-Key",
            str,
            OpenApiParameter.HEADER,
            description="1-255 visible ASCII characters. The same key and upload from the same client within "
            "24 h answers as the first time (same request_id) and queues nothing; another file or options: "
            "422; while the first is still being accepted: 409.",
        )
    ],
    responses={202: Accepted, 400: Refused, 409: Refused, 413: Refused, 422: Refused, 429: Message},
)

status_schema = extend_schema(
    summary="Progress, errors and result of a request",
    parameters=[OpenApiParameter("request_id", str, required=True, description="The UUID from the upload.")],
    responses={200: Status, 400: Message, 404: Message},
)

_REQUEST_ID = OpenApiParameter(
    "request_id", str, OpenApiParameter.PATH, description="The UUID from the upload."
)


def _change_schema(
    summary: str, description: str, answer: tuple[int, Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return extend_schema(
        summary=summary,
        description=description,
        parameters=[_REQUEST_ID],
        request=None,
        responses={answer[0]: answer[1], 404: Message, 409: Message},
    )


cancel_schema = _change_schema(
    "Cancel a request",
    "Images not yet started are not processed; the request then completes as `cancelled` with a result CSV "
    "of what was done. 409 if it had already completed; repeating it is harmless.",
    (200, Status),
)
retry_schema = _change_schema(
    "Retry a request's failed images",
    "Its failed images are queued again with a fresh attempt budget; the request goes back to `processing`, "
    "and its result CSV and webhook are produced again when it completes. 409 while it is still processing "
    "or when nothing failed.",
    (202, Accepted),
)

failures_schema = extend_schema(
    summary="The failed images as CSV",
    description="Columns: line, serial_number, position, url, reason (and code, where images carry one); "
    "one row per failed image, in input order.",
    parameters=[_REQUEST_ID],
    responses={(200, "text/csv"): OpenApiTypes.STR, 404: Message},
)
