"""`manage.py demo`: a first run that works offline. Uploads the sample catalogue to the running server.

The images are drawn by the service itself and served at /samples/ (settings.SAMPLE_IMAGES, on in
development only), so nothing outside this machine is needed. Two URLs fail on purpose (a missing
image and a text file) so the pages show a failure too.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from catalog.client import Client
from catalog.management.commands import submit
from sansio import samples

EXPECTED_FAILURES = {samples.MISSING, samples.NOT_AN_IMAGE}


class Command(submit.Command):
    help = (
        "Upload the sample catalogue (images the service draws and serves itself, development only) "
        "to the running server, show its progress, and say where to look at it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", help="the service's base URL (default: PUBLIC_BASE_URL or HOST:PORT)")
        parser.add_argument(
            "--csv",
            type=Path,
            default=Path("sample-catalogue.csv"),
            help="where to write the sample CSV (default: sample-catalogue.csv here; overwritten)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.SAMPLE_IMAGES:
            self.stderr.write(
                "error: the sample images are off here (SAMPLE_IMAGES): they are for development"
            )
            sys.exit(submit.EXIT_REFUSED)
        path: Path = options["csv"]
        with path.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(
                samples.catalogue_rows(settings.SAMPLE_IMAGES_URL.removesuffix("/samples/"))
            )
        self.stdout.write(
            f"Wrote the sample catalogue to {path}: 6 products, 9 images, 2 of them fail on purpose."
        )
        server = options["server"] or submit.default_server()
        self._quiet = options["verbosity"] == 0
        self._accepted: list[str] = []
        code = self._run(
            {
                "csv": path,
                "request_id": None,
                "output": path.with_name(f"{path.stem}-result.csv"),
                "server": server,
                "token": "",
                "force": True,
                "no_wait": False,
                "verbosity": options["verbosity"],
                **dict.fromkeys(
                    ("scale", "quality", "quality_target", "max_bytes", "output_format", "webhook_url")
                ),
                **dict.fromkeys(("retry", "cancel")),
            }
        )
        if code not in (submit.EXIT_OK, submit.EXIT_FAILURES) or not self._accepted:
            sys.exit(code)
        request_id = self._accepted[0]
        status = Client(server).status(request_id)
        unexpected = [f for f in status.failures if f.url.rsplit("/", 1)[-1] not in EXPECTED_FAILURES]
        if unexpected:
            self.stderr.write("error: images failed that should not have (see above)")
            sys.exit(submit.EXIT_FAILURES)
        self.stdout.write(
            self.style.SUCCESS("The demo worked: the two failures above are the deliberate ones.")
            + f"\nSee it in the browser: {server}/requests/{request_id}/"
        )

    def _upload(self, client: Client, csv_path: Path, options: dict[str, Any]) -> str:
        self._accepted.append(super()._upload(client, csv_path, options))
        return self._accepted[-1]
