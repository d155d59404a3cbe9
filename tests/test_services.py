"""Claims, leases and counters: a duplicate delivery or a lost worker never counts an image twice."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog import services
from catalog.models import ImageStatus, ProcessingRequest, ProductImage, RequestStatus

pytestmark = pytest.mark.django_db

CSV = (
    b"S. No.,Product Name,Input Image Urls\n"
    b'1,SKU1,"https://img.example.com/a.jpg,https://img.example.com/b.jpg"\n'
    b"2,SKU2,https://img.example.com/c.jpg\n"
)


@pytest.fixture
def request_pk(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=False):
        created = services.create_request(
            io.BytesIO(CSV), name="c.csv", options=services.RequestOptions(), base_url="http://testserver"
        )
    services.start_request(created.pk)
    return created.pk


def output(name: str) -> services.ImageOutput:
    return services.ImageOutput(name, "JPEG", 100, 50, (10, 10), (5, 5))


def first_image(request_pk: int) -> ProductImage:
    return ProductImage.objects.filter(request_id=request_pk).order_by("pk").first()  # type: ignore[return-value]


def test_a_claimed_image_cannot_be_claimed_again(request_pk: int) -> None:
    image = first_image(request_pk)
    assert services.claim_image(image.pk) is not None
    assert services.claim_image(image.pk) is None, "a duplicate delivery is a no-op"


def test_settling_twice_counts_once(request_pk: int, django_capture_on_commit_callbacks) -> None:
    image = first_image(request_pk)
    claimed = services.claim_image(image.pk)
    assert claimed is not None
    with django_capture_on_commit_callbacks(execute=False):
        services.finish_image(claimed, output("x.jpg"))
        services.finish_image(claimed, output("x.jpg"))
        services.fail_image(claimed, "late failure from a stale claim")
    request = ProcessingRequest.objects.get(pk=request_pk)
    assert (request.images_done, request.images_failed) == (1, 0)


def test_a_stale_claim_cannot_settle_after_a_lease_expiry(
    request_pk: int, django_capture_on_commit_callbacks
) -> None:
    image = first_image(request_pk)
    stale = services.claim_image(image.pk)
    assert stale is not None
    ProductImage.objects.filter(pk=image.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    fresh = services.claim_image(image.pk)
    assert fresh is not None and fresh.attempt == 2
    with django_capture_on_commit_callbacks(execute=False):
        services.fail_image(stale, "the first worker woke up late")
        services.finish_image(fresh, output("x.jpg"))
    image.refresh_from_db()
    assert image.status == ImageStatus.DONE
    assert ProcessingRequest.objects.get(pk=request_pk).images_done == 1


def test_retries_stop_at_the_attempts_cap(
    request_pk: int, settings, django_capture_on_commit_callbacks
) -> None:
    settings.IMAGE_MAX_ATTEMPTS = 2
    image = first_image(request_pk)
    with django_capture_on_commit_callbacks(execute=False):
        first = services.claim_image(image.pk)
        assert first is not None and services.release_image(first, "HTTP 503 from img.example.com")
        second = services.claim_image(image.pk)
        assert second is not None and not services.release_image(second, "HTTP 503 from img.example.com")
    image.refresh_from_db()
    assert image.status == ImageStatus.FAILED
    assert "gave up after 2 attempts" in image.error


def test_completion_happens_once_with_the_right_status(
    request_pk: int, django_capture_on_commit_callbacks, tmp_path, settings
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": "/media/", "allow_overwrite": True},
        },
    }
    images = list(ProductImage.objects.filter(request_id=request_pk).order_by("pk"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for image in images[:2]:
            claimed = services.claim_image(image.pk)
            assert claimed is not None
            services.finish_image(claimed, output(f"outputs/{image.pk}.jpg"))
        assert not callbacks, "no finalize before every image is settled"
        claimed = services.claim_image(images[2].pk)
        assert claimed is not None
        services.fail_image(claimed, "HTTP 404 from img.example.com")
    assert len(callbacks) == 1
    assert services.finalize_request(request_pk) is True
    assert services.finalize_request(request_pk) is False, "only one run completes the request"
    request = ProcessingRequest.objects.get(pk=request_pk)
    assert request.status == RequestStatus.COMPLETED_WITH_ERRORS
    assert request.completed and request.result_file == f"results/{request.request_id}.csv"
    rows = list(csv.reader(io.StringIO((tmp_path / request.result_file).read_text())))
    first, second = (f"http://testserver/media/outputs/{image.pk}.jpg" for image in images[:2])
    assert rows[1][3] == f"{first},{second}"
    assert rows[2][3] == "", "a failed image leaves its slot empty"


def test_reconciler_requeues_expired_leases_and_gives_up_exhausted(
    request_pk: int, settings, django_capture_on_commit_callbacks
) -> None:
    settings.IMAGE_MAX_ATTEMPTS = 2
    images = list(ProductImage.objects.filter(request_id=request_pk).order_by("pk"))
    past = timezone.now() - timedelta(seconds=1)
    ProductImage.objects.filter(pk=images[0].pk).update(
        status=ImageStatus.RUNNING, attempts=1, lease_expires_at=past
    )
    ProductImage.objects.filter(pk=images[1].pk).update(
        status=ImageStatus.RUNNING, attempts=2, lease_expires_at=past
    )
    with django_capture_on_commit_callbacks(execute=False):
        report = services.reconcile()
    assert report.images_requeued == [images[0].pk]
    assert report.images_given_up == 1
    images[1].refresh_from_db()
    assert images[1].status == ImageStatus.FAILED
