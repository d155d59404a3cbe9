"""An upload as the API and the upload page both take it: the options it may ask for, checked by one
serializer so both refuse the same things alike, and its problems in the contract's item shape.

Storing it is the service's (services.accept_upload); neither the page nor the API owns any of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework import serializers

from catalog.fetch import FetchError, fetcher_from_settings
from catalog.models import OutputFormat
from sansio import quality as per_image
from sansio.csvfile import CsvProblem

if TYPE_CHECKING:
    DictSerializer = serializers.Serializer[dict[str, Any]]
else:
    DictSerializer = serializers.Serializer  # DRF's classes are not subscriptable at run time


def problem_item(
    message: str, *, line: int | None = None, column: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One problem as the contract lists it: ``line`` and ``column`` (None for a whole-file or
    whole-request problem), anything ``extra`` (the form ``field`` it names), and the ``message``."""
    return {"line": line, "column": column, **extra, "message": message}


def problem_items(problems: list[CsvProblem]) -> list[dict[str, Any]]:
    return [problem_item(p.message, line=p.line, column=p.column) for p in problems]


_TARGET_RANGE = f"must be from {per_image.TARGET_MIN} to {per_image.TARGET_MAX} ({per_image.METRIC})"


class UploadOptionsSerializer(DictSerializer):
    scale = serializers.FloatField(default=0.5)
    quality = serializers.CharField(default="50", max_length=16)
    quality_target = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=per_image.TARGET_MIN,
        max_value=per_image.TARGET_MAX,
        error_messages=dict.fromkeys(("min_value", "max_value"), _TARGET_RANGE),
    )
    max_bytes = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**31 - 1,
        error_messages={"min_value": "must be a positive number of bytes"},
    )
    output_format = serializers.ChoiceField(choices=OutputFormat.values, default=OutputFormat.ORIGINAL)
    webhook_url = serializers.URLField(default="", allow_blank=True, max_length=2048)

    def validate_quality(self, value: str) -> str:
        text = value.strip().lower()
        if text == "auto" or (text.isdigit() and 1 <= int(text) <= 100):
            return text
        raise serializers.ValidationError(f"must be a whole number from 1 to 100, or auto (not {value[:16]})")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """quality becomes a number and a flag: "auto" searches per image (from 50 for animations)."""
        auto = attrs.get("quality", "50") == "auto"
        searched = auto or attrs.get("output_format") == OutputFormat.AUTO
        if attrs.get("quality_target") is not None and not searched:
            message = "applies only with quality=auto or output_format=auto"
            raise serializers.ValidationError({"quality_target": [message]})
        return {**attrs, "quality": 50 if auto else int(attrs.get("quality", "50")), "quality_auto": auto}

    def validate_scale(self, value: float) -> float:
        if not 0 < value <= 1:
            raise serializers.ValidationError("must be greater than 0 and at most 1")
        return value

    def validate_webhook_url(self, value: str) -> str:
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("must be an http or https URL")
        if value and not settings.WEBHOOK_SECRET:
            raise serializers.ValidationError("webhooks are not enabled on this server (no WEBHOOK_SECRET)")
        if value:  # the same address policy as image downloads; delivery checks again
            checker = fetcher_from_settings()
            try:
                checker.check_url(value)
            except FetchError as exc:
                raise serializers.ValidationError(str(exc)) from exc
            finally:
                checker.close()
        return value
