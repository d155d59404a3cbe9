"""A small HTTP client for the public API (shared/api-contract.md): upload, poll, download.

No Django in here: `manage.py submit` drives it, and any script may import it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

CHUNK_BYTES = 64 * 1024


class ClientError(Exception):
    """Anything that stops the client; `str()` is a sentence fit for a terminal."""


class Unreachable(ClientError):
    """No HTTP answer at all: the server is not running, the address is wrong, or the network failed."""


@dataclass(frozen=True)
class Problem:
    """One entry of the API's error body; `line` and `column` are None for whole-file problems."""

    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ApiError(ClientError):
    """The server answered with an error status; its body, whatever its shape, as a list of problems."""

    def __init__(self, http_status: int, problems: list[Problem], *, truncated: bool = False) -> None:
        self.http_status = http_status
        self.problems = problems
        self.truncated = truncated
        super().__init__(f"HTTP {http_status}: " + "; ".join(str(p) for p in problems[:3]))


@dataclass(frozen=True)
class ImageFailure:
    line: int | None
    url: str
    message: str


@dataclass(frozen=True)
class Status:
    """The part of `GET /api/status/` a client acts on."""

    request_id: str
    state: str
    completed: bool
    products: int
    images: int
    done: int
    failed: int
    percent: int
    result_file: str | None
    failures: tuple[ImageFailure, ...]
    created_at: str | None
    completed_at: str | None
    cancelled: int = 0
    reused: int = 0

    @property
    def settled(self) -> int:
        return self.done + self.failed

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Status:
        progress = data.get("progress") or {}
        failures = tuple(
            ImageFailure(e.get("line"), str(e.get("url", "")), str(e.get("message", "")))
            for e in data.get("errors") or []
        )
        return cls(
            request_id=str(data["request_id"]),
            state=str(data.get("status", "")),
            completed=bool(data.get("completed")),
            products=int(progress.get("products", 0)),
            images=int(progress.get("images", 0)),
            done=int(progress.get("done", 0)),
            failed=int(progress.get("failed", 0)),
            percent=int(progress.get("percent", 0)),
            result_file=data.get("result_file") or None,
            failures=failures,
            created_at=data.get("created_at"),
            completed_at=data.get("completed_at"),
            cancelled=int(progress.get("cancelled", 0)),
            reused=int(progress.get("reused", 0)),
        )


@dataclass(frozen=True)
class Accepted:
    request_id: str
    status_url: str


class Client:
    def __init__(self, server: str, token: str = "", *, timeout: float = 60.0) -> None:
        if not server.lower().startswith(("http://", "https://")):
            raise ClientError(f"the server address {server!r} must start with http:// or https://")
        self.server = server.rstrip("/")
        self._origin = _origin(self.server)
        self._token = token
        # Retries stay off: an upload is not idempotent, and the caller decides what to do on failure.
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=10.0, read=timeout), retries=False)

    def upload(self, csv_path: Path, options: dict[str, str]) -> Accepted:
        # The whole file in memory: the server caps uploads (CSV_MAX_BYTES, 50 MiB by default).
        fields: dict[str, Any] = {"file": (csv_path.name, csv_path.read_bytes(), "text/csv"), **options}
        data = self._json("POST", f"{self.server}/api/upload/", fields=fields)
        return Accepted(str(data["request_id"]), str(data["status_url"]))

    def status(self, request_id: str) -> Status:
        url = f"{self.server}/api/status/"
        return Status.from_json(self._json("GET", url, fields={"request_id": request_id}))

    def cancel(self, request_id: str) -> Status:
        """Images not yet started are not processed; the request completes as cancelled."""
        return Status.from_json(self._json("POST", f"{self.server}/api/requests/{request_id}/cancel/"))

    def retry(self, request_id: str) -> Accepted:
        """Queue a completed request's failed images again."""
        data = self._json("POST", f"{self.server}/api/requests/{request_id}/retry/")
        return Accepted(str(data["request_id"]), str(data["status_url"]))

    def status_url(self, request_id: str) -> str:
        return f"{self.server}/api/status/?request_id={request_id}"

    def download(self, url: str, dest: Path, *, overwrite: bool) -> int:
        """Stream `url` to `dest` through a temporary file beside it: never a half-written result."""
        if not url.lower().startswith(("http://", "https://")):
            raise ClientError(f"the server gave a result URL that is not http(s): {url!r}")
        resp = self._send("GET", url, preload_content=False)
        try:
            if resp.status != 200:
                raise _api_error(resp.status, resp.read())
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
            size = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in resp.stream(CHUNK_BYTES):
                        out.write(chunk)
                        size += len(chunk)
                if not overwrite and dest.exists():
                    raise FileExistsError(f"{dest} appeared while downloading; pass --force to overwrite it")
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return size
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(f"the download of {url} broke off: {_reason(exc)}") from exc
        finally:
            resp.release_conn()

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        resp = self._send(method, url, **kwargs)
        if resp.status >= 400:
            raise _api_error(resp.status, resp.data)
        try:
            return dict(json.loads(resp.data))
        except (ValueError, TypeError) as exc:
            raise ApiError(resp.status, [Problem(None, None, "the answer is not JSON")]) from exc

    def _send(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": "application/json"}
        if self._token and _origin(url) == self._origin:  # never hand the token to another host (S3)
            headers["Authorization"] = f"Token {self._token}"
        try:
            return self._http.request(method, url, headers=headers, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(f"cannot reach the server at {self.server}: {_reason(exc)}") from exc


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _api_error(http_status: int, body: bytes) -> ApiError:
    """The contract's two error shapes (`errors` list, or one `message`), or whatever a proxy sent."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        problems = [
            Problem(e.get("line"), e.get("column"), str(e.get("message", "")))
            for e in data["errors"]
            if isinstance(e, dict)
        ]
        return ApiError(http_status, problems, truncated=bool(data.get("errors_truncated")))
    if isinstance(data, dict) and "message" in data:
        return ApiError(http_status, [Problem(None, None, str(data["message"]))])
    text = " ".join(body.decode("utf-8", "replace").split())[:200] or "(empty body)"
    return ApiError(http_status, [Problem(None, None, text)])


def _reason(exc: BaseException) -> str:
    """The operating system's words ("Connection refused") rather than urllib3's wrapper text."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    return str(exc)
