"""`manage.py purge --older-than DAYS`: remove requests, result CSVs and outputs past the retention age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.services.retention import purge


class Command(BaseCommand):
    help = (
        "Remove requests completed more than DAYS ago, with their rows, result CSVs and outputs; an "
        "output shared with a request that is kept stays. Never touches a request still running."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", type=float, required=True, metavar="DAYS", help="the age, in days"
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would go; remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        days: float = options["older_than"]
        if not days > 0:
            raise CommandError(f"--older-than must be a number of days above 0, not {days:g}")
        report = purge(timedelta(days=days), dry_run=options["dry_run"])
        verb = "Would remove" if options["dry_run"] else "Removed"
        self.stdout.write(
            f"{verb} {report.requests} requests completed over {days:g} days ago and "
            f"{report.shared_outputs} shared outputs no kept request uses ({report.files} files deleted), "
            f"{report.sources} remembered source versions, {report.keys} expired idempotency keys."
        )
