"""Removing what is older than the retention age: requests, their rows, result CSVs and outputs.

A request goes once it completed longer ago than the age (one still running is never touched), with
its products, images, webhook log and idempotency keys, its result CSV and any output named for it
alone. Outputs stored by content are shared between requests: one goes only when no image of any
request left points to it, so a request still kept never loses an output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from catalog.batching import batched
from catalog.models import ContentOutput, ProcessingRequest, ProductImage, SourceVersion
from catalog.services import idempotency
from catalog.storage import preview_image_name

logger = logging.getLogger(__name__)

REQUESTS_PER_TRANSACTION = 100
_SHARED_PREFIX = "outputs/by-content/"


@dataclass
class PurgeReport:
    requests: int = 0
    files: int = 0
    shared_outputs: int = 0
    sources: int = 0
    keys: int = 0


def purge(older_than: timedelta, *, dry_run: bool = False) -> PurgeReport:
    """Remove everything older than ``older_than`` that nothing kept still needs."""
    cutoff = timezone.now() - older_than
    report = PurgeReport()
    old = ProcessingRequest.objects.filter(completed=True, completed_at__lt=cutoff)
    for chunk in batched(list(old.values_list("pk", flat=True)), REQUESTS_PER_TRANSACTION):
        files = [name for name in old.filter(pk__in=chunk).values_list("result_file", flat=True) if name]
        own_outputs = ProductImage.objects.filter(request_id__in=chunk).exclude(output_file="")
        files += [
            name
            for name in own_outputs.values_list("output_file", flat=True)
            if not name.startswith(_SHARED_PREFIX)
        ]
        report.requests += len(chunk)
        if not dry_run:
            with transaction.atomic():
                ProcessingRequest.objects.filter(pk__in=chunk).delete()
            report.files += _delete_files(files)
    # After the requests: an output is unreferenced once the last image pointing to it has gone.
    unreferenced = ContentOutput.objects.filter(created_at__lt=cutoff).exclude(
        output_file__in=ProductImage.objects.exclude(output_file="").values("output_file")
    )
    shared = list(unreferenced.values_list("pk", "output_file"))
    report.shared_outputs = len(shared)
    stale_sources = SourceVersion.objects.filter(seen_at__lt=cutoff)
    if dry_run:
        report.sources = stale_sources.count()
        return report
    for outputs in batched(shared, 1000):
        ContentOutput.objects.filter(pk__in=[pk for pk, _name in outputs]).delete()
        report.files += _delete_files([name for _pk, name in outputs])
    report.sources = stale_sources.delete()[0]
    report.keys = idempotency.forget_expired()
    logger.info(
        "purged what was older than %s: %d requests, %d shared outputs, %d files, %d source versions",
        older_than,
        report.requests,
        report.shared_outputs,
        report.files,
        report.sources,
    )
    return report


def _delete_files(names: list[str]) -> int:
    """The files named, and each output's before picture where a page made one (services/previews.py)."""
    deleted = 0
    previews = [preview_image_name(name) for name in names if name.startswith("outputs/")]
    for name in names + [name for name in previews if default_storage.exists(name)]:
        try:
            default_storage.delete(name)
            deleted += 1
        except OSError as exc:  # a file already gone, or storage refusing: the rows are gone either way
            logger.warning("could not delete %s: %s", name, exc)
    return deleted
