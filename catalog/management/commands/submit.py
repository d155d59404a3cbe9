"""`manage.py submit`: send a CSV to a running server, show its progress, write the result CSV."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser, DjangoHelpFormatter

from catalog.client import ApiError, Client, ClientError, Status, Unreachable
from catalog.models import OutputFormat
from catalog.progress import ProgressReport, clock
from sansio.sizes import human_size

MANAGE_PY = Path(__file__).resolve().parents[3] / "manage.py"  # the one that runs this command
EXIT_OK, EXIT_ERROR, EXIT_REFUSED, EXIT_FAILURES, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = """\
exit codes:
  0    every image was processed and the result CSV is written
  1    the server could not be reached, or answered with an error
  2    nothing was submitted: the CSV or an option was refused (every problem is printed)
  3    finished, but some images failed or the request was cancelled: the result CSV is written
       with their slots empty
  130  interrupted: the request keeps running on the server (follow it again with --request-id)
"""
FAILURES_LISTED = 20
POLL_FIRST, POLL_MAX = 0.25, 1.0  # seconds; a poll costs the server one row read
OUTAGE_GRACE = 60.0  # keep polling through a server restart this long before giving up


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, and the exit code table kept as written."""


class Command(BaseCommand):
    help = "Upload a CSV of products to a running server, show the progress, and write the result CSV."
    requires_system_checks: list[str] = []  # a client: the server's configuration is not ours to check

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("epilog", EXIT_CODES)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv", nargs="?", type=Path, help="the CSV of products to upload")
        parser.add_argument("--server", help="the service's base URL (default: PUBLIC_BASE_URL or HOST:PORT)")
        parser.add_argument(
            "--token",
            default=os.environ.get("CATALOG_API_TOKEN", ""),
            help="API token if the server requires one (default: $CATALOG_API_TOKEN, which `ps` won't show)",
        )
        parser.add_argument("--scale", help="0 < scale <= 1 (the server's default: 0.5)")
        parser.add_argument("--quality", help="1 to 100, or auto (the server's default: 50)")
        parser.add_argument(
            "--quality-target", help="for --quality auto: the MS-SSIM to reach (default 0.992)"
        )
        parser.add_argument("--max-bytes", help="the most bytes an output image may take")
        parser.add_argument("--output-format", choices=OutputFormat.values)
        parser.add_argument("--webhook-url", help="POSTed to, signed, when the request completes")
        parser.add_argument(
            "-o", "--output", type=Path, help="the result CSV (default: <input>-result.csv beside the input)"
        )
        parser.add_argument("--force", action="store_true", help="overwrite the result CSV if it exists")
        parser.add_argument("--no-wait", action="store_true", help="print the request id and return at once")
        parser.add_argument("--request-id", help="follow a request submitted before instead of uploading")
        parser.add_argument(
            "--cancel", metavar="ID", help="cancel a request: images not yet started are not processed"
        )
        parser.add_argument(
            "--retry", metavar="ID", help="queue a completed request's failed images again, then follow it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._quiet = options["verbosity"] == 0
        code = self._run(options)
        if code != EXIT_OK:
            sys.exit(code)

    def _run(self, options: dict[str, Any]) -> int:
        csv_path: Path | None = options["csv"]
        request_id: str | None = options["request_id"] or options["retry"]
        output: Path = options["output"] or _default_output(csv_path, request_id or options["cancel"])
        server: str = options["server"] or default_server()
        problem = _arguments_problem(csv_path, request_id, server, options["cancel"])
        if options["request_id"] and options["retry"]:
            problem = "give a CSV to upload, or --request-id to follow one, or --retry or --cancel (only one)"
        if not problem and not options["no_wait"] and not options["cancel"]:
            problem = _output_problem(output, csv_path, options["force"])
        if problem:
            return self._refuse(problem)
        client = Client(server, options["token"])
        try:
            if options["cancel"]:
                self._cancel(client, options["cancel"])
            else:
                request_id = self._start(client, csv_path, request_id, options)
                if not options["no_wait"]:
                    return self._follow(client, request_id, output, options)
                follow = _follow_command(request_id, output, options["server"])
                self.stdout.write(f"Status: {client.status_url(request_id)}\nFollow it: {follow}")
            return EXIT_OK
        except KeyboardInterrupt:
            if request_id is None:
                self.stderr.write(
                    "\nInterrupted before the server answered: the upload may have gone through."
                )
            else:
                self.stderr.write(
                    f"\nStopped waiting. Request {request_id} keeps running on the server; to follow it "
                    f"again:\n  {_follow_command(request_id, output, options['server'])}"
                )
            return EXIT_INTERRUPTED
        except ApiError as exc:
            return self._api_error(exc, options)
        except (ClientError, OSError) as exc:
            self.stderr.write(f"error: {exc}")
            return EXIT_ERROR

    def _start(
        self, client: Client, csv_path: Path | None, request_id: str | None, options: dict[str, Any]
    ) -> str:
        """The request to follow: uploaded now, retried now, or named."""
        if options["retry"]:
            accepted = client.retry(options["retry"])
            self._say(f"Retrying the failed images of request {accepted.request_id}")
        if csv_path is not None:
            return self._upload(client, csv_path, options)
        assert request_id is not None
        return request_id

    def _upload(self, client: Client, csv_path: Path, options: dict[str, Any]) -> str:
        fields = ("scale", "quality", "quality_target", "max_bytes", "output_format", "webhook_url")
        form = {name: str(options[name]) for name in fields if options[name] is not None}
        size = csv_path.stat().st_size
        self._say(f"Uploading {csv_path} ({human_size(size)}) to {client.server}")
        accepted = client.upload(csv_path, form)
        self._say(f"Accepted: request {accepted.request_id}")
        return accepted.request_id

    def _cancel(self, client: Client, request_id: str) -> None:
        status = client.cancel(request_id)
        when = "has completed" if status.completed else "completes once the images already started finish"
        self.stdout.write(
            f"Cancelled request {request_id}: {status.done} images done, {status.failed} failed, "
            f"{status.cancelled} not processed. It {when}, with a result CSV of what was done: "
            f"{client.status_url(request_id)}"
        )

    def _follow(self, client: Client, request_id: str, output: Path, options: dict[str, Any]) -> int:
        report = ProgressReport(self.stdout, tty=self.stdout.isatty(), quiet=self._quiet)
        try:
            status = self._wait(client, request_id, report)
        finally:
            report.close()
        self._summary(status, client.status_url(request_id), time.monotonic() - report.started)
        if not status.result_file:
            self.stderr.write(f"error: request {request_id} finished without a result file")
            return EXIT_ERROR
        size = client.download(status.result_file, output, overwrite=options["force"])
        self.stdout.write(f"Result CSV: {output} ({human_size(size)})")
        return EXIT_OK if status.failed == 0 and status.state != "cancelled" else EXIT_FAILURES

    def _wait(self, client: Client, request_id: str, report: ProgressReport) -> Status:
        delay, down_since, last = POLL_FIRST, None, None
        while True:
            try:
                status = client.status(request_id)
            except (Unreachable, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.http_status < 500:
                    raise  # 404, 401: polling again would say the same
                now = time.monotonic()
                down_since = now if down_since is None else down_since
                if now - down_since > OUTAGE_GRACE:
                    raise
                if last is not None:
                    report.update(last, note="the server is not answering; still trying")
                time.sleep(POLL_MAX)
                continue
            down_since, last = None, status
            report.update(status)
            if status.completed:
                return status
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)

    def _summary(self, status: Status, status_url: str, waited: float) -> None:
        took = clock(_server_duration(status) or waited)
        if status.state == "cancelled":
            headline = (
                f"Cancelled: {status.done} of {status.images} images done, {status.failed} failed, "
                f"{status.cancelled} not processed, in {took}."
            )
        elif status.failed == 0:
            self.stdout.write(
                self.style.SUCCESS(f"Done: {status.done} images of {status.products} products in {took}.")
            )
            return
        else:
            headline = (
                f"Finished with errors: {status.done} of {status.images} images done, "
                f"{status.failed} failed, in {took}."
            )
        self.stdout.write(self.style.WARNING(headline))
        listed = status.failures[:FAILURES_LISTED]
        for failure in listed:
            self.stdout.write(f"  line {failure.line}: {failure.url} — {failure.message}")
        if status.failed > len(listed):
            self.stdout.write(f"  … and {status.failed - len(listed)} more: {status_url}")

    def _api_error(self, exc: ApiError, options: dict[str, Any]) -> int:
        refused = exc.http_status in (400, 413) and options["request_id"] is None
        if refused:
            self.stderr.write(f"The server refused {options['csv']} (HTTP {exc.http_status}):")
        else:
            self.stderr.write(f"error: the server answered HTTP {exc.http_status}:")
        for problem in exc.problems:
            self.stderr.write(f"  {problem}")
        if exc.truncated:
            self.stderr.write("  … and more: the server stops listing problems at CSV_MAX_PROBLEMS")
        if exc.http_status in (401, 403) and not options["token"]:
            self.stderr.write("Pass --token or set CATALOG_API_TOKEN (`manage.py drf_create_token <user>`).")
        return EXIT_REFUSED if refused else EXIT_ERROR

    def _refuse(self, message: str) -> int:
        self.stderr.write(f"error: {message}")
        return EXIT_REFUSED

    def _say(self, message: str) -> None:
        if not self._quiet:
            self.stdout.write(message)


def default_server() -> str:
    if settings.PUBLIC_BASE_URL:
        return str(settings.PUBLIC_BASE_URL)
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.HOST, settings.HOST)  # noqa: S104 - connect where it listens
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.PORT}"


def _default_output(csv_path: Path | None, request_id: str | None) -> Path:
    if csv_path is not None:
        return csv_path.with_name(f"{csv_path.stem}-result.csv")
    return Path(f"{request_id}-result.csv")


def _arguments_problem(
    csv_path: Path | None, request_id: str | None, server: str, cancel: str | None = None
) -> str | None:
    if not server.lower().startswith(("http://", "https://")):
        return f"the server address {server!r} must start with http:// or https://"
    if sum(given is not None for given in (csv_path, request_id, cancel)) != 1:
        return "give a CSV to upload, or --request-id to follow one, or --retry or --cancel (only one)"
    for named in (request_id, cancel):
        if named is not None and not _is_uuid(named):
            return f"{named!r} is not a request id (a UUID)"
    if csv_path is not None and not csv_path.is_file():
        return f"{csv_path}: no such file"
    return None


def _follow_command(request_id: str, output: Path, server: str | None) -> str:
    """A command that works when pasted: this very Python (the venv's) and manage.py, by their paths."""
    python, manage = (pasteable_path(Path(p)) for p in (sys.executable, MANAGE_PY))
    words = [python, manage, "submit", "--request-id", request_id, "--output", str(output)]
    return shlex.join(words + (["--server", server] if server else []))  # a client: no APP_ENV needed


def pasteable_path(path: Path) -> str:
    """Relative to the current folder when under it (``.venv/bin/python``), else absolute."""
    absolute = path.absolute()
    return str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) else str(absolute)


def _output_problem(output: Path, csv_path: Path | None, force: bool) -> str | None:
    if csv_path is not None and output.resolve() == csv_path.resolve():
        return f"the result would overwrite the input {csv_path}: choose another --output"
    if output.exists() and not force:
        return f"{output} already exists: choose another --output, or pass --force to overwrite it"
    if not output.parent.is_dir():
        return f"cannot write {output}: {output.parent} is not a folder"
    return None


def _server_duration(status: Status) -> float | None:
    """Created to completed, as the server saw it: true even when we attached late."""
    if not (status.created_at and status.completed_at):
        return None
    try:
        return (
            datetime.fromisoformat(status.completed_at) - datetime.fromisoformat(status.created_at)
        ).total_seconds()
    except ValueError:
        return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
