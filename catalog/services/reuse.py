"""Not processing an image again: what each source URL sent last time, and outputs keyed by content.

Before a batch downloads, ``priors`` reads (in two queries) each URL's validators and whether the
output of the bytes it had last time, with this request's options, is stored. Then the download is
conditional: a ``304`` reuses that output. Bytes that come back whole are hashed: an output already
made from the same bytes with the same options (under any URL, in any request) is reused without
transforming. Outputs are stored under their content key (``sansio.contentkeys``), so a transform is
done once however many requests and URLs share its input; ``record`` writes what a batch learnt, in
its settling transaction.

Reuse crosses owners: a content key is a hash over the input's bytes (BLAKE3), so only a client that sent
the same bytes can arrive at an output, and it is the output that client's own request would have
made. The README says why that is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from django.db import close_old_connections, connection
from django.utils import timezone

from catalog.fetch import Response
from catalog.models import ContentOutput, ProcessingRequest, SourceVersion
from sansio.contentkeys import content_hash, output_key, sha256_hex, usable_validator
from sansio.images import TransformOptions

if TYPE_CHECKING:
    from catalog.services.claims import ClaimedImage
    from catalog.services.producing import ImageOutput


@dataclass(frozen=True)
class Prior:
    """What a conditional request may send, and the output a 304 means; empty: ask plainly."""

    etag: str = ""
    last_modified: str = ""
    output: ContentOutput | None = None


NO_PRIOR = Prior()


@dataclass(frozen=True)
class SourceSeen:
    """What a URL answered with this time, to remember for the next."""

    url: str
    etag: str
    last_modified: str
    content_hash: str  # sansio.contentkeys.content_hash of its bytes

    @classmethod
    def of(cls, url: str, response: Response) -> SourceSeen:
        return cls(
            url,
            usable_validator(response.headers.get("ETag")),
            usable_validator(response.headers.get("Last-Modified"), limit=64),
            content_hash(response.body),
        )


def url_key(url: str) -> str:
    return sha256_hex(url.encode())


def priors(
    claims: list[ClaimedImage], options_of: Callable[[ProcessingRequest], TransformOptions]
) -> dict[int, Prior]:
    """Per claimed image (by pk): its URL's validators, when the output they stand for is stored."""
    by_url = {
        version.url: version
        for version in SourceVersion.objects.filter(
            url_sha256__in={url_key(c.image.input_url) for c in claims}
        )
    }
    keys: dict[int, str] = {}
    for claimed in claims:
        version = by_url.get(claimed.image.input_url)
        if version is not None:
            keys[claimed.image.pk] = output_key(version.content_hash, options_of(claimed.image.request))
    stored = ContentOutput.objects.in_bulk(set(keys.values()), field_name="key")
    found: dict[int, Prior] = {}
    for claimed in claims:
        output = stored.get(keys.get(claimed.image.pk, ""))
        version = by_url.get(claimed.image.input_url)
        if output is not None and version is not None:
            found[claimed.image.pk] = Prior(version.etag, version.last_modified, output)
    return found


def find_output(key: str) -> ContentOutput | None:
    """The stored output of these bytes and options, made for any image before (a probe of the
    unique index, and a read of the row when there is one).

    In a worker it runs in one of its process's few database threads (catalog/workerresources.py),
    each with its own connection, which no task boundary tidies: one past its age or broken is
    replaced first, as Celery's fix-up does for the task's own.
    """
    close_old_connections()
    # Most lookups miss (new bytes). The ORM spends ~0.25 ms of CPU building any query, three times that
    # in a worker whose caches a transform has just filled; this raw probe of the unique index costs
    # 0.015 ms, so only a hit pays for the ORM's read of the row.
    with connection.cursor() as cursor:
        cursor.execute(_output_exists_sql(connection.vendor), [key])
        if cursor.fetchone() is None:
            return None
    return ContentOutput.objects.filter(key=key).first()


@cache
def _output_exists_sql(vendor: str) -> str:
    """Per database kind (``vendor``): its quoting of names."""
    quote = connection.ops.quote_name
    table, column = ContentOutput._meta.db_table, ContentOutput._meta.get_field("key").column
    return f"SELECT 1 FROM {quote(table)} WHERE {quote(column)} = %s LIMIT 1"  # noqa: S608 - names from the model


def record(done: Iterable[tuple[ClaimedImage, ImageOutput]]) -> None:
    """Remember a batch's new outputs and what each URL sent; call in the settling transaction."""
    now = timezone.now()
    outputs: dict[str, ContentOutput] = {}
    sources: dict[str, SourceVersion] = {}
    for _, output in done:
        if output.content_key and not output.reused:
            outputs[output.content_key] = output.content_row(now)
        seen = output.source
        if seen is not None:
            sources[url_key(seen.url)] = SourceVersion(
                url_sha256=url_key(seen.url),
                url=seen.url,
                etag=seen.etag,
                last_modified=seen.last_modified,
                content_hash=seen.content_hash,
                seen_at=now,
            )
    if outputs:  # two workers may make the same output at once: the first row stays, the file is the same
        ContentOutput.objects.bulk_create(outputs.values(), ignore_conflicts=True)
    if sources:
        SourceVersion.objects.bulk_create(
            sources.values(),
            update_conflicts=True,
            unique_fields=["url_sha256"],
            update_fields=["etag", "last_modified", "content_hash", "seen_at"],
        )
