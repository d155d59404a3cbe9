"""Claims, leases and counters: a duplicate delivery or a lost worker never counts an image twice."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from bench.imagepath import Inline
from catalog import metrics, services
from catalog.fetch import FetchError
from catalog.models import ImageStatus, ProcessingRequest, Product, ProductImage, RequestStatus
from catalog.services import batches, producing
from catalog.services.producing import produce_output
from sansio.reasons import Reason

pytestmark = pytest.mark.django_db

CSV = (
    b"S. No.,Product Name,Input Image Urls\n"
    b'1,SKU1,"https://img.example.com/a.jpg,https://img.example.com/b.jpg"\n'
    b"2,SKU2,https://img.example.com/c.jpg\n"
)


def failure(message: str) -> services.ImageFailed:
    code = Reason.NOT_FOUND if "404" in message else Reason.HTTP_ERROR
    return services.ImageFailed(message, code=code, retryable="503" in message)


def create(body: bytes, capture) -> int:
    with capture(execute=False):
        created = services.create_request(
            io.BytesIO(body), name="c.csv", options=services.RequestOptions(), base_url="http://testserver"
        )
    services.start_request(created.pk)
    return created.pk


@pytest.fixture
def request_pk(django_capture_on_commit_callbacks) -> int:
    return create(CSV, django_capture_on_commit_callbacks)


def output(name: str) -> services.ImageOutput:
    return services.ImageOutput(name, "JPEG", 100, 50, (10, 10), (5, 5))


def image_ids(request_pk: int) -> list[int]:
    return list(
        ProductImage.objects.filter(request_id=request_pk).order_by("pk").values_list("pk", flat=True)
    )


def claim_one(image_id: int) -> services.ClaimedImage:
    [claimed] = services.claim_images([image_id])
    return claimed


def counters(request_pk: int) -> tuple[int, int]:
    request = ProcessingRequest.objects.get(pk=request_pk)
    return request.images_done, request.images_failed


def test_a_claimed_image_cannot_be_claimed_again(request_pk: int) -> None:
    ids = image_ids(request_pk)
    assert len(services.claim_images(ids)) == 3
    assert services.claim_images(ids) == [], "a duplicate delivery claims nothing"


def test_settling_twice_counts_once(request_pk: int, django_capture_on_commit_callbacks) -> None:
    claimed = claim_one(image_ids(request_pk)[0])
    with django_capture_on_commit_callbacks(execute=False):
        services.settle([(claimed, output("x.jpg"))], [], [])
        services.settle([(claimed, output("x.jpg"))], [(claimed, failure("late failure"))], [])
    assert counters(request_pk) == (1, 0)


def taken_over(image_id: int) -> tuple[services.ClaimedImage, services.ClaimedImage]:
    """A first claim whose lease expired, and the second worker's claim that took the image over."""
    stale = claim_one(image_id)
    ProductImage.objects.filter(pk=image_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    return stale, claim_one(image_id)


def test_a_stale_claim_cannot_settle_after_a_lease_expiry(
    request_pk: int, django_capture_on_commit_callbacks
) -> None:
    image_id = image_ids(request_pk)[0]
    stale, fresh = taken_over(image_id)
    assert fresh.attempt == 2
    with django_capture_on_commit_callbacks(execute=False):
        services.settle([], [(stale, failure("the first worker woke up late"))], [])
        services.settle([(fresh, output("x.jpg"))], [], [])
    assert ProductImage.objects.get(pk=image_id).status == ImageStatus.DONE
    assert counters(request_pk) == (1, 0)


def test_an_image_is_counted_processed_once_when_settled_not_when_made(
    request_pk: int, django_capture_on_commit_callbacks
) -> None:
    """A worker that lost its lease made an output too: only the holder's settlement counts."""
    stale, fresh = taken_over(image_ids(request_pk)[0])
    before = metrics.IMAGES_PROCESSED._value.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.settle([(fresh, output("x.jpg"))], [], [])
        services.settle([(stale, output("x.jpg"))], [], [])
    assert metrics.IMAGES_PROCESSED._value.get() == before + 1


def test_a_failure_is_stored_with_its_code(request_pk: int, django_capture_on_commit_callbacks) -> None:
    first, second = (claim_one(pk) for pk in image_ids(request_pk)[:2])
    with django_capture_on_commit_callbacks(execute=False):
        services.settle([], [(first, failure("HTTP 404 from img.example.com"))], [])
        services.settle([], [], [(second, failure("HTTP 503 from img.example.com"))])
    rows = ProductImage.objects.filter(pk__in=[first.image.pk, second.image.pk]).order_by("pk")
    assert [(row.status, row.error_code) for row in rows] == [
        (ImageStatus.FAILED, "not_found"),
        (ImageStatus.QUEUED, "http_error"),  # released for a retry: the last reason is kept
    ]


def test_a_batch_settles_the_claims_it_still_holds_and_only_those(
    request_pk: int, django_capture_on_commit_callbacks
) -> None:
    ids = image_ids(request_pk)
    batch = services.claim_images(ids)
    ProductImage.objects.filter(pk=ids[1]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    fresh = claim_one(ids[1])  # another worker took the middle one over
    with django_capture_on_commit_callbacks(execute=False):
        services.settle([(claimed, output(f"{claimed.image.pk}.jpg")) for claimed in batch], [], [])
    assert counters(request_pk) == (2, 0)
    images = ProductImage.objects.in_bulk(ids)
    assert [images[pk].status for pk in ids] == [ImageStatus.DONE, ImageStatus.RUNNING, ImageStatus.DONE]
    assert (images[ids[1]].claim_token, images[ids[1]].output_file) == (fresh.token, "")
    assert images[ids[2]].output_file == f"{ids[2]}.jpg"


def test_retries_stop_at_the_attempts_cap(
    request_pk: int, settings, django_capture_on_commit_callbacks
) -> None:
    settings.IMAGE_MAX_ATTEMPTS = 2
    image_id = image_ids(request_pk)[0]
    with django_capture_on_commit_callbacks(execute=False):
        first = claim_one(image_id)
        assert services.settle([], [], [(first, failure("HTTP 503 from img.example.com"))]) == [first]
        second = claim_one(image_id)
        assert services.settle([], [], [(second, failure("HTTP 503 from img.example.com"))]) == []
    image = ProductImage.objects.get(pk=image_id)
    assert image.status == ImageStatus.FAILED
    assert image.error == "HTTP 503 from img.example.com (gave up after 2 attempts)"
    assert counters(request_pk) == (0, 1)


def test_a_host_s_retry_after_holds_the_retry_back_longer_than_its_backoff(
    request_pk: int, django_capture_on_commit_callbacks
) -> None:
    first, second = (claim_one(pk) for pk in image_ids(request_pk)[:2])
    throttled = services.ImageFailed(
        "img.example.com asked us to wait 600 s (Retry-After)", code=Reason.HTTP_ERROR, retryable=True
    )
    throttled.retry_after = 600.0
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=False):
        services.settle([], [], [(first, throttled), (second, failure("HTTP 503 from img.example.com"))])
    rows = ProductImage.objects.in_bulk([first.image.pk, second.image.pk])
    waited, backed_off = rows[first.image.pk], rows[second.image.pk]
    assert waited.status == ImageStatus.QUEUED and waited.enqueued_at is None
    assert waited.not_before is not None and waited.not_before >= before + timedelta(seconds=600)
    assert backed_off.not_before is not None  # its backoff: 2 s at most after a first attempt
    assert backed_off.not_before <= timezone.now() + timedelta(seconds=2)


def test_an_image_out_of_its_download_budget_fails_with_its_last_code(
    request_pk: int, settings, django_capture_on_commit_callbacks
) -> None:
    settings.IMAGE_TOTAL_BUDGET, settings.FETCH_CONNECT_TIMEOUT = 45.0, 5.0
    first, second = (claim_one(pk) for pk in image_ids(request_pk)[:2])
    first.image.download_seconds = 30.0  # 15 s left: another attempt
    second.image.download_seconds = 41.0  # 4 s left: less than a connection may take
    timeout = services.ImageFailed(
        "img.example.com took longer than 30 s", code=Reason.TIMEOUT, retryable=True
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert services.settle([], [], [(first, timeout), (second, timeout)]) == [first]
    rows = ProductImage.objects.in_bulk([first.image.pk, second.image.pk])
    retried, spent = rows[first.image.pk], rows[second.image.pk]
    assert (retried.status, retried.download_seconds) == (ImageStatus.QUEUED, 30.0)  # kept for the next
    assert (spent.status, spent.error_code) == (ImageStatus.FAILED, "timeout")
    assert (
        spent.error == "img.example.com took longer than 30 s (gave up after 1 attempts, 41 s of downloads)"
    )


def test_a_wait_for_a_hosts_connection_is_not_spent_from_the_download_budget(request_pk: int) -> None:
    """The fetcher says how long an exchange waited for its turn at the host (catalog/fetch): that
    time is ours, not the host's, and stays out of the image's download budget."""

    class WaitedThenFailed:
        memory = None

        def __init__(self, waited: float) -> None:
            self.waited = waited

        def fetch_image(self, url: str, **kwargs: Any) -> None:
            error = FetchError("img.example.com took longer than 30 s", code=Reason.TIMEOUT, retryable=True)
            error.waited = self.waited
            raise error

    claimed = claim_one(image_ids(request_pk)[0])
    for waited, spent_more in ((3600.0, False), (0.0, True)):  # waited longer than it took, or not at all
        claimed.image.download_seconds = 10.0
        with pytest.raises(services.ImageFailed):
            produce_output(claimed, WaitedThenFailed(waited), nullcontext())  # type: ignore[arg-type]
        assert (claimed.image.download_seconds > 10.0) is spent_more


def test_a_batch_cut_by_its_time_limit_keeps_what_finished_and_queues_the_rest_at_once(
    request_pk: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks,
) -> None:
    first, *rest = image_ids(request_pk)
    downloading = threading.Event()

    def produce(claimed, fetcher, transform_slots, prior, lookup, **window: object) -> services.ImageOutput:
        if claimed.image.pk != first:
            downloading.wait(30)  # a slow host's image: still running when the limit strikes
        return output(f"{claimed.image.pk}.jpg")

    monkeypatch.setattr(batches, "produce_output", produce)
    tools: dict[str, Any] = {"fetcher": SimpleNamespace(memory=None), "transform_slots": nullcontext()}
    with ThreadPoolExecutor(max_workers=1) as threads, django_capture_on_commit_callbacks(execute=False):
        try:
            # One thread: the first image is done at once, the second waits on its host, the third
            # has not started when the limit strikes (the first needs microseconds of its second).
            cut = services.process_batch(
                image_ids(request_pk), "node@host:1", threads=threads, time_limit=1.0, **tools
            )
            assert cut
        finally:
            downloading.set()
    rows = ProductImage.objects.in_bulk([first, *rest])
    assert rows[first].status == ImageStatus.DONE, "finished before the cut: kept"
    for pk in rest:  # one running, one not started: both back in the queue at once, no backoff
        assert (rows[pk].status, rows[pk].error_code, rows[pk].not_before) == (
            ImageStatus.QUEUED,
            "timeout",
            None,
        )
    assert counters(request_pk) == (1, 0)
    assert "soft time limit: 1 of 3 images finished, the rest queued again" in caplog.messages
    with ThreadPoolExecutor(max_workers=1) as threads:
        assert not services.process_batch([first], "node@host:1", threads=threads, **tools), "done: no claim"


@pytest.mark.timeout(60)
def test_a_batch_runs_in_an_executor_that_runs_each_call_at_once_in_the_callers_thread(
    request_pk: int, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    """With bench/imagepath.py's own Inline executor, as it runs the path without threads: an image's
    transform_next signal comes while its batch is still starting it (it deadlocked on the batch's
    lock until 30 November)."""

    def produce(claimed, fetcher, transform_slots, prior, lookup, **window: object) -> services.ImageOutput:
        signal = producing.transform_next.get()
        assert signal is not None
        signal()  # its download over, its transform next
        return output(f"{claimed.image.pk}.jpg")

    monkeypatch.setattr(batches, "produce_output", produce)
    tools: dict[str, Any] = {"fetcher": SimpleNamespace(memory=None), "transform_slots": nullcontext()}
    with django_capture_on_commit_callbacks(execute=False):  # pytest-timeout ends a deadlock
        assert services.process_batch(image_ids(request_pk), "node@host:1", threads=Inline(), **tools)
    assert counters(request_pk) == (3, 0)


def test_a_batch_held_up_by_one_slow_image_settles_the_others_meanwhile(
    request_pk: int, monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks
) -> None:
    *quick, slow = image_ids(request_pk)
    settings.IMAGE_SETTLE_INTERVAL = 0.2
    settled_done: list[int] = []
    quick_settled = threading.Event()
    real_settle = services.settle

    def recording_settle(done, failed, retry, **kwargs):
        released = real_settle(done, failed, retry, **kwargs)
        settled_done.extend(claimed.image.pk for claimed, _ in done)
        if set(quick) <= set(settled_done):
            quick_settled.set()
        return released

    slow_saw_them_settled: list[bool] = []

    def produce(claimed, fetcher, transform_slots, prior, lookup, **window: object) -> services.ImageOutput:
        if claimed.image.pk == slow:  # a wedged host's image: the others must not wait for it
            slow_saw_them_settled.append(quick_settled.wait(30))
        return output(f"{claimed.image.pk}.jpg")

    monkeypatch.setattr(batches, "settle", recording_settle)
    monkeypatch.setattr(batches, "produce_output", produce)
    tools: dict[str, Any] = {"fetcher": SimpleNamespace(memory=None), "transform_slots": nullcontext()}
    with ThreadPoolExecutor(max_workers=3) as threads, django_capture_on_commit_callbacks(execute=False):
        assert services.process_batch(image_ids(request_pk), "node@host:1", threads=threads, **tools)
    assert slow_saw_them_settled == [True], "the quick images were settled while the slow one ran"
    assert sorted(settled_done) == sorted([*quick, slow]), "each image settled once"
    assert counters(request_pk) == (3, 0)


def test_a_repeated_url_is_processed_once_and_counted_for_each_slot(
    django_capture_on_commit_callbacks,
) -> None:
    body = (
        b"S. No.,Product Name,Input Image Urls\n"
        b'1,A,"https://img.example.com/same.jpg,https://img.example.com/other.jpg"\n'
        b"2,B,https://img.example.com/same.jpg\n"
    )
    request_pk = create(body, django_capture_on_commit_callbacks)
    queued = list(services.queued_image_ids(request_pk))
    assert len(queued) == 2, "the second same.jpg is not queued"
    claims = services.claim_images(queued)
    with django_capture_on_commit_callbacks(execute=False):
        services.settle(
            [(claims[0], output("same.jpg"))], [(claims[1], failure("HTTP 404 from img.example.com"))], []
        )
    assert counters(request_pk) == (2, 1)
    repeat = ProductImage.objects.get(request_id=request_pk, product__serial_number=2)
    assert (repeat.status, repeat.output_file) == (ImageStatus.DONE, "same.jpg")
    assert Product.objects.filter(request_id=request_pk, processed=True).count() == 2


def finalizes(callbacks: list[Callable[[], object]]) -> list[Callable[[], object]]:
    """The on-commit callbacks that enqueue a finalize (the others count metrics)."""
    return [callback for callback in callbacks if "finalize_if_settled" in callback.__qualname__]


def test_completion_happens_once_with_the_right_status(
    request_pk: int, django_capture_on_commit_callbacks, media: Path
) -> None:
    ids = image_ids(request_pk)
    claims = services.claim_images(ids)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.settle([(c, output(f"outputs/{c.image.pk}.jpg")) for c in claims[:2]], [], [])
        assert not finalizes(callbacks), "no finalize before every image is settled"
        services.settle([], [(claims[2], failure("HTTP 404 from img.example.com"))], [])
    assert len(finalizes(callbacks)) == 1
    assert services.finalize_request(request_pk) is True
    assert services.finalize_request(request_pk) is False, "only one run completes the request"
    request = ProcessingRequest.objects.get(pk=request_pk)
    assert request.status == RequestStatus.COMPLETED_WITH_ERRORS
    assert request.completed and request.result_file == f"results/{request.request_id}.csv"
    rows = list(csv.reader(io.StringIO((media / request.result_file).read_text())))
    first, second = (f"http://testserver/media/outputs/{pk}.jpg" for pk in ids[:2])
    assert rows[1][3] == f"{first},{second}"
    assert rows[2][3] == "", "a failed image leaves its slot empty"


def test_reconciler_requeues_expired_leases_and_gives_up_exhausted(
    request_pk: int, settings, django_capture_on_commit_callbacks
) -> None:
    settings.IMAGE_MAX_ATTEMPTS = 2
    ids = image_ids(request_pk)
    claim_one(ids[0])
    claim_one(ids[1])
    ProductImage.objects.filter(pk=ids[1]).update(attempts=2)
    ProductImage.objects.filter(pk__in=ids[:2]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        report = services.reconcile()
    assert report.images_requeued == [ids[0]]
    assert report.images_given_up == 1
    assert ProductImage.objects.get(pk=ids[1]).status == ImageStatus.FAILED
    assert counters(request_pk) == (0, 1)


def test_an_upload_reserves_its_ids_past_every_id_ever_used(django_capture_on_commit_callbacks) -> None:
    """Rows are inserted with ids reserved up front; a deleted request's ids are never given again."""
    first = create(CSV, django_capture_on_commit_callbacks)
    used = max(ProductImage.objects.filter(request_id=first).values_list("pk", flat=True))
    ProcessingRequest.objects.filter(pk=first).delete()
    second = create(CSV, django_capture_on_commit_callbacks)
    ids = image_ids(second)
    assert min(ids) > used
    images = ProductImage.objects.filter(request_id=second).order_by("pk")
    assert [(i.product.serial_number, i.position) for i in images] == [(1, 0), (1, 1), (2, 0)]


def test_batches_are_sent_in_turn_between_owners_then_between_an_owners_requests(
    settings, django_capture_on_commit_callbacks
) -> None:
    from django.contrib.auth.models import User

    settings.IMAGE_BATCH_SIZE, settings.IMAGE_BATCHES_IN_FLIGHT = 1, 6
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    body = b"S. No.,Product Name,Input Image Urls\n" + b"".join(
        f"{n},P{n},https://img.example.com/{n}.jpg\n".encode() for n in range(1, 4)
    )
    first, second, third = (create(body, django_capture_on_commit_callbacks) for _ in range(3))
    for request_pk, owner in ((first, alice), (second, alice), (third, bob)):
        ProcessingRequest.objects.filter(pk=request_pk).update(owner=owner)

    batches = services.batches_to_send()

    owners = dict(ProductImage.objects.values_list("pk", "request_id"))
    assert [owners[ids[0]] for ids in batches] == [first, third, second, third, first, third]
    assert services.batches_to_send() == [], "no room left: six batches are in flight"


class ParkingHosts:
    """A host policy whose host never gives its parked images a turn."""

    def __init__(self) -> None:
        self.parked: list[str] = []

    def unanswered_for(self, key: str) -> float:
        return 5.0  # the host's first wave has been out this long

    def when_turn(self, key: str, turn: Callable[[], None]) -> None:
        self.parked.append(key)


def test_an_image_parked_for_its_hosts_turn_goes_back_unsent_and_is_not_an_attempt(
    request_pk: int, monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks
) -> None:
    *others, parked = image_ids(request_pk)
    settings.FETCH_CONNECT_TIMEOUT, settings.FETCH_READ_TIMEOUT = 1, 10  # the wave is decided 11 s in

    def produce(claimed, fetcher, transform_slots, prior, lookup, **window: object) -> services.ImageOutput:
        if claimed.image.pk == parked:
            raise services.ImageFailed("busy", code=Reason.TIMEOUT, retryable=True, turn_key="http://far:80")
        return output(f"{claimed.image.pk}.jpg")

    monkeypatch.setattr(batches, "produce_output", produce)
    hosts = ParkingHosts()
    tools: dict[str, Any] = {
        "fetcher": SimpleNamespace(memory=None, hosts=hosts),
        "transform_slots": nullcontext(),
    }
    with ThreadPoolExecutor(max_workers=3) as threads, django_capture_on_commit_callbacks(execute=False):
        assert services.process_batch(image_ids(request_pk), "node@host:1", threads=threads, **tools)

    assert hosts.parked == ["http://far:80"]
    image = ProductImage.objects.get(pk=parked)
    assert image.status == ImageStatus.QUEUED and image.attempts == 0, "never sent: not an attempt"
    assert image.not_before is not None
    back_in = (image.not_before - timezone.now()).total_seconds()
    assert 5 < back_in <= 7, f"back once its host's wave (out 5 s) must have timed out: {back_in}"
    assert counters(request_pk) == (len(others), 0)


def test_a_batch_gives_its_room_up_once_only_transforms_are_left(
    request_pk: int, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    """Its downloads over, the next batch may download while its images transform: a far host's
    latency is then not waited out after each batch's last transforms. Not while any still downloads."""
    first, *rest = image_ids(request_pk)
    freed, transforming = threading.Event(), threading.Event()
    lock, downloading, downloads_seen_at_free = threading.Lock(), [0], []

    def produce(claimed, fetcher, transform_slots, prior, lookup, **window: object) -> services.ImageOutput:
        with lock:
            downloading[0] += 1
        downloaded = producing.transform_next.get()
        assert downloaded is not None, "a batch's image is told how to say its transform is next"
        if claimed.image.pk != first:  # the others download on while the first transforms
            assert transforming.wait(30)
        with lock:
            downloading[0] -= 1
        downloaded()
        if claimed.image.pk == first:  # still transforming when the room goes
            transforming.set()
            assert freed.wait(30), "the room was given up while this image transformed"
        return output(f"{claimed.image.pk}.jpg")

    def free_room() -> None:
        with lock:
            downloads_seen_at_free.append(downloading[0])
        freed.set()

    monkeypatch.setattr(batches, "produce_output", produce)
    tools: dict[str, Any] = {
        "fetcher": SimpleNamespace(memory=None, hosts=None),
        "transform_slots": nullcontext(),
    }
    with ThreadPoolExecutor(max_workers=3) as threads, django_capture_on_commit_callbacks(execute=False):
        assert services.process_batch(
            image_ids(request_pk), "node@host:1", threads=threads, free_room=free_room, **tools
        )
    assert transforming.is_set() and counters(request_pk) == (1 + len(rest), 0)
    assert downloads_seen_at_free and set(downloads_seen_at_free) == {0}, downloads_seen_at_free


def test_a_requests_last_images_go_out_in_smaller_batches(
    settings, django_capture_on_commit_callbacks
) -> None:
    """A batch runs in one worker process: a request's last full batch kept one core busy while the
    others had nothing left. Its last images are spread: a quarter of what is left, at least four."""
    from catalog.services.dispatching import batch_size

    settings.IMAGE_BATCH_SIZE, settings.IMAGE_BATCHES_IN_FLIGHT = 8, 100
    body = b"S. No.,Product Name,Input Image Urls\n" + b"".join(
        f"{n},P{n},https://img.example.com/{n}.jpg\n".encode() for n in range(1, 51)
    )
    request_pk = create(body, django_capture_on_commit_callbacks)

    batches = services.batches_to_send()

    assert [len(ids) for ids in batches] == [8, 8, 8, 7, 5, 4, 4, 6]
    sent = [pk for ids in batches for pk in ids]
    assert sent == sorted(image_ids(request_pk)), "every image once, first rows first"
    assert [batch_size(n, 32) for n in (1, 3, 5, 12, 16, 40, 128, 1000)] == [
        1,
        3,
        5,
        4,
        4,
        10,
        32,
        32,
    ]
