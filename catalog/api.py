"""The public JSON API: upload a CSV, poll its status (see shared/api-contract.md)."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import StreamingHttpResponse
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView, exception_handler

from catalog import api_schema, selectors, services
from catalog.logcontext import request_id_context
from catalog.models import ProcessingRequest
from catalog.services import idempotency, lifecycle
from catalog.uploads import UploadOptionsSerializer, problem_item, problem_items
from sansio.csvfile import neutralise_formula
from sansio.sizes import human_size


def error_body(
    *, errors: list[dict[str, Any]] | None = None, message: str | None = None, truncated: bool = False
) -> dict[str, Any]:
    """The contract's two error shapes, built here only: a list of problems (`errors`, each with `line`,
    `column` and `message`; `errors_truncated` when the list was cut), or one `message`."""
    if errors is None:
        return {"status": "error", "message": message}
    return {"status": "error", "errors": errors} | ({"errors_truncated": True} if truncated else {})


def refusal(http_status: int, message: str, **extra: Any) -> Response:
    return Response(error_body(errors=[problem_item(message, **extra)]), status=http_status)


class UploadView(APIView):
    parser_classes = [MultiPartParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "upload"

    @api_schema.upload_schema
    def post(self, request: Request) -> Response:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.CSV_MAX_BYTES + 64 * 1024:  # refuse before reading the body
            return self._too_large()
        upload = request.FILES.get("file")
        if upload is None:
            return refusal(status.HTTP_400_BAD_REQUEST, "no file: send the CSV as the multipart field 'file'")
        if upload.size is not None and upload.size > settings.CSV_MAX_BYTES:
            return self._too_large()
        options = UploadOptionsSerializer(data=request.data)
        if not options.is_valid():
            errors = [
                problem_item(f"{field}: {message}", field=field)
                for field, messages in options.errors.items()
                for message in messages
            ]
            return Response(error_body(errors=errors), status=status.HTTP_400_BAD_REQUEST)
        return self._accept(request, upload, options)

    def _accept(self, request: Request, upload: UploadedFile, options: UploadOptionsSerializer) -> Response:
        """Store the upload as a request; with an Idempotency-Key, once (see services/idempotency.py)."""
        key_use: idempotency.KeyUse | None = None
        if "Idempotency-Key" in request.headers:
            try:
                key = idempotency.parse_key(request.headers["Idempotency-Key"])
            except idempotency.KeyRefused as exc:
                return refusal(status.HTTP_400_BAD_REQUEST, str(exc), field="Idempotency-Key")
            key_use = self._use_key(request, key, upload, options)
            if key_use.seen is not idempotency.Seen.NEW:
                return self._duplicate(key_use)
        try:
            row = key_use.row if key_use is not None else None
            bind = None if row is None else partial(idempotency.bind, row)
            created = services.accept_upload(  # the key is bound as the request is stored
                upload,
                dict(options.validated_data),
                user=request.user,
                site_url=request.build_absolute_uri("/"),
                on_stored=bind,
            )
        except services.CatalogueRejected as exc:
            body = error_body(errors=problem_items(exc.problems), truncated=exc.truncated)
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        finally:
            if key_use is not None and key_use.row is not None:
                idempotency.free(key_use.row)  # only while unbound: a refused or broken upload
        with request_id_context(created.request_id):
            return accepted(created)

    @staticmethod
    def _use_key(
        request: Request, key: str, upload: UploadedFile, options: UploadOptionsSerializer
    ) -> idempotency.KeyUse:
        client = idempotency.client_of(request.user, request.META.get("REMOTE_ADDR", ""))
        return idempotency.use_key(client, key, idempotency.fingerprint(upload, dict(options.validated_data)))

    @staticmethod
    def _duplicate(key_use: idempotency.KeyUse) -> Response:
        if key_use.seen is idempotency.Seen.REPLAY and key_use.request is not None:
            return accepted(key_use.request)
        if key_use.seen is idempotency.Seen.OTHER_BODY:
            message = "this Idempotency-Key was used for a different file or options: use a new key"
            return refusal(status.HTTP_422_UNPROCESSABLE_ENTITY, message)
        message = "an upload with this Idempotency-Key is still being accepted: ask again in a moment"
        return refusal(status.HTTP_409_CONFLICT, message)

    @staticmethod
    def _too_large() -> Response:
        limit = human_size(settings.CSV_MAX_BYTES)
        return refusal(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"the file is over the {limit} limit")


def accepted(created: ProcessingRequest) -> Response:
    """The upload's answer; also a replayed upload's and a retry's."""
    body = {
        "status": "accepted",
        "request_id": str(created.request_id),
        "status_url": selectors.status_url(created),
    }
    return Response(body, status=status.HTTP_202_ACCEPTED)


class StatusView(APIView):
    @api_schema.status_schema
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("request_id", "").strip()
        if not raw:
            return _message(
                status.HTTP_400_BAD_REQUEST, "request_id is required: /api/status/?request_id=<uuid>"
            )
        found = _named_request(request, raw, in_path=False)
        if isinstance(found, Response):
            return found
        return Response(selectors.status_payload(found))


def _named_request(request: Request, raw_id: str, *, in_path: bool) -> ProcessingRequest | Response:
    """The request ``raw_id`` names as the caller may see it, or the answer when there is none: 404 for
    an unknown id (and, with REQUIRE_AUTH, for someone else's). A malformed id is a bad query (400) for
    the status endpoint, and names no resource (404) in a path (cancel, retry, failures)."""
    try:
        request_id = uuid.UUID(raw_id)
    except ValueError:
        if in_path:
            return _message(status.HTTP_404_NOT_FOUND, f"no request with request_id {raw_id[:64]!r}")
        return _message(status.HTTP_400_BAD_REQUEST, f"request_id {raw_id[:64]!r} is not a UUID")
    found = selectors.find_request(request_id, request.user)
    if found is None:
        return _message(status.HTTP_404_NOT_FOUND, f"no request with request_id {request_id}")
    return found


def _change(
    request: Request,
    raw_id: str,
    change: Callable[[ProcessingRequest], ProcessingRequest],
    answer: Callable[[ProcessingRequest], Response],
) -> Response:
    """Cancel or retry: the same service as the page's buttons; 409 when the state does not allow it."""
    found = _named_request(request, raw_id, in_path=True)
    if isinstance(found, Response):
        return found
    with request_id_context(found.request_id):
        try:
            return answer(change(found))
        except lifecycle.LifecycleRefused as exc:
            return _message(status.HTTP_409_CONFLICT, str(exc))


class CancelView(APIView):
    @api_schema.cancel_schema
    def post(self, request: Request, request_id: str) -> Response:
        return _change(
            request, request_id, lifecycle.cancel_request, lambda r: Response(selectors.status_payload(r))
        )


class RetryView(APIView):
    @api_schema.retry_schema
    def post(self, request: Request, request_id: str) -> Response:
        return _change(request, request_id, lifecycle.retry_request, accepted)


class _Echo:
    def write(self, value: str) -> str:
        return value


class _CsvRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: text/csv``; an error body still goes out as JSON text."""

    media_type = "text/csv"
    format = "csv"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return json.dumps(data).encode()


class FailuresView(APIView):
    renderer_classes = [JSONRenderer, _CsvRenderer]

    @api_schema.failures_schema
    def get(self, request: Request, request_id: str) -> Response | StreamingHttpResponse:
        found = _named_request(request, request_id, in_path=True)
        if isinstance(found, Response):
            return found
        writer = csv.writer(_Echo())
        rows = (
            writer.writerow([neutralise_formula(c) for c in row]) for row in selectors.failure_rows(found)
        )
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        stem = found.name.removesuffix(".csv").replace('"', "")
        response["Content-Disposition"] = f'attachment; filename="{stem}-failures.csv"'
        return response


def _message(http_status: int, message: str) -> Response:
    return Response(error_body(message=message), status=http_status)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's own errors (auth, parsing, throttling) in the contract's error shape."""
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = error_body(message=str(response.data["detail"]))
    return response
