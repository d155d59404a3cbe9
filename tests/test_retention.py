"""Retention: what is older than the age goes, and an output a kept request uses stays."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from catalog import services
from catalog.models import ContentOutput, IdempotentUpload, ProcessingRequest, ProductImage, SourceVersion
from catalog.services.retention import purge

pytestmark = pytest.mark.django_db


def catalogue(images: int) -> bytes:
    urls = ",".join(f"https://img.example.com/{n}.jpg" for n in range(images))
    return f'S. No.,Product Name,Input Image Urls\n1,SKU1,"{urls}"\n'.encode()


@pytest.fixture(autouse=True)
def _media(media: Path) -> Path:
    return media


def stored(media: Path, name: str) -> str:
    (media / name).parent.mkdir(parents=True, exist_ok=True)
    (media / name).write_bytes(b"x")
    return name


def request_with(
    media: Path, outputs: list[str], *, days_ago: float, completed: bool, capture
) -> ProcessingRequest:
    with capture(execute=False):
        created = services.create_request(
            io.BytesIO(catalogue(len(outputs))),
            name="c.csv",
            options=services.RequestOptions(),
            base_url="http://testserver",
        )
    for image, name in zip(
        ProductImage.objects.filter(request=created).order_by("position"), outputs, strict=True
    ):
        image.output_file, image.status = name, "done"
        image.save()
    when = timezone.now() - timedelta(days=days_ago)
    result = stored(media, f"results/{created.request_id}.csv") if completed else ""
    ProcessingRequest.objects.filter(pk=created.pk).update(
        created_at=when, completed=completed, completed_at=when if completed else None, result_file=result
    )
    return created


def content(media: Path, key: str, days_ago: float) -> str:
    name = stored(media, f"outputs/by-content/{key}.jpg")
    ContentOutput.objects.create(
        key=key,
        input_hash="0" * 64,
        output_file=name,
        output_format="JPEG",
        input_bytes=1,
        output_bytes=1,
        input_width=1,
        input_height=1,
        output_width=1,
        output_height=1,
        created_at=timezone.now() - timedelta(days=days_ago),
    )
    return name


def test_purge_keeps_what_a_kept_request_still_points_to(
    media: Path, django_capture_on_commit_callbacks
) -> None:
    shared, only_old = content(media, "shared", 40), content(media, "old", 40)
    legacy = stored(media, "outputs/some-request/1-1.jpg")
    # Before pictures a comparison page made (services/previews.py) go with their outputs.
    shared_before, only_old_before = (
        stored(media, "previews/by-content/shared.jpg"),
        stored(media, "previews/by-content/old.jpg"),
    )
    legacy_before = stored(media, "previews/some-request/1-1.jpg")
    capture = django_capture_on_commit_callbacks
    old = request_with(media, [shared, only_old, legacy], days_ago=40, completed=True, capture=capture)
    young = request_with(media, [shared], days_ago=1, completed=True, capture=capture)
    running = request_with(media, [only_old], days_ago=40, completed=False, capture=capture)
    SourceVersion.objects.create(url_sha256="a" * 64, url="u", content_hash="0" * 64)
    SourceVersion.objects.filter().update(seen_at=timezone.now() - timedelta(days=40))
    IdempotentUpload.objects.create(client="ip:x", key="k", fingerprint="f", request=young)
    IdempotentUpload.objects.filter().update(created_at=timezone.now() - timedelta(days=2))

    report = purge(timedelta(days=30))

    assert set(ProcessingRequest.objects.values_list("pk", flat=True)) == {young.pk, running.pk}
    assert not (media / f"results/{old.request_id}.csv").exists()
    assert (media / f"results/{young.request_id}.csv").exists()
    assert (media / shared).exists(), "the young request still uses it"
    assert (media / only_old).exists(), "the running request still uses it"
    assert not (media / legacy).exists(), "named for the old request alone"
    assert not (media / legacy_before).exists()
    assert (media / shared_before).exists() and (media / only_old_before).exists()
    assert set(ContentOutput.objects.values_list("key", flat=True)) == {"shared", "old"}
    assert (report.requests, report.sources, report.keys) == (1, 1, 1)

    ProcessingRequest.objects.filter(pk=running.pk).delete()
    purge(timedelta(days=30))
    assert not (media / only_old).exists(), "unreferenced now"
    assert not (media / only_old_before).exists()
    assert set(ContentOutput.objects.values_list("key", flat=True)) == {"shared"}


def test_the_command_dry_run_removes_nothing(media: Path, django_capture_on_commit_callbacks, capsys) -> None:
    request_with(
        media,
        [content(media, "k", 40)],
        days_ago=40,
        completed=True,
        capture=django_capture_on_commit_callbacks,
    )
    call_command("purge", "--older-than", "30", "--dry-run")
    assert "Would remove 1 requests" in capsys.readouterr().out
    assert ProcessingRequest.objects.count() == 1 and ContentOutput.objects.count() == 1
    call_command("purge", "--older-than", "30")
    assert "Removed 1 requests" in capsys.readouterr().out
    assert ProcessingRequest.objects.count() == 0 and ContentOutput.objects.count() == 0
