"""How many of a process's images are in hand before their transform (catalog/downloadwindow.py)."""

from __future__ import annotations

import functools
import io
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from catalog import downloadwindow, services
from catalog.downloadwindow import DownloadWindow
from catalog.fetch import Fetcher, FetchLimits
from catalog.models import ProductImage
from tests.support.imageserver import ImageServer, serve_images
from tests.test_fetch import ALLOW_LOCAL
from tests.test_services import counters, create

WAIT = 30  # seconds: a deadline for conditions that come at once unless something is wrong


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def enter_in_thread(window: DownloadWindow, order: list[int], n: int) -> threading.Thread:
    def enter() -> None:
        place = window.enter(time.monotonic() + WAIT)
        assert place is not None
        order.append(n)

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    return thread


def waiting(window: DownloadWindow, n: int) -> bool:
    return len(window._waiting) == n


def let_in(order: list[int], n: int) -> bool:
    return len(order) == n


def timed(window: DownloadWindow, download: float, transform: float | None = None) -> None:
    """One image through the window: its download took ``download`` s, its transform ``transform``."""
    place = window.enter()
    assert place is not None
    window.downloaded(place, download)
    window.leave(place)
    if transform is not None:
        window.transformed(transform)


def held(window: DownloadWindow) -> int:
    """A place whose download is over and whose transform has not begun: it counts however long."""
    place = window.enter()
    assert place is not None
    window.downloaded(place, 0.0)
    return place


def test_until_a_download_comes_back_the_window_grows_with_the_oldest_ones_age() -> None:
    window = DownloadWindow(floor=4, ceiling=200)
    assert window.size == 4, "nothing out: the floor, not every thread at once at a host next door"
    first = window.enter()
    assert first is not None
    began = window._out[first]
    # Until one comes back, the floor doubled every FIRST_WAVE_DOUBLING (50 ms) the oldest is out.
    assert window.size_at(began) == 4
    assert window.size_at(began + 0.125) == 22, "4 x 2^2.5, two and a half doublings"
    assert window.size_at(began + 10) == 200, "never more than the threads"
    assert began < window._grows_at(began + 0.125) <= began + 0.125 + downloadwindow.GROWTH_TICK
    window.downloaded(first, 0.002)
    window.leave(first)
    assert window.size_at(began + 10) == 5, "once one is back: its time, not the age of what is out"
    assert window._grows_at(began + 10) == math.inf
    window.transformed(0.025)
    assert window.size == 5, "a host next door: the floor, and one for the download's time"
    for _ in range(200):  # the host turns far: 1 s to first byte and body
        timed(window, 1.0)
    assert window.size == 4 + 100, "2.5 x (40 transforms a second x 1 s) more than the floor"
    window.ceiling = 64
    assert window.size == 64, "never more than the threads"


def test_a_far_hosts_first_wave_is_let_in_as_its_latency_shows() -> None:
    window = DownloadWindow(floor=1, ceiling=8)
    order: list[int] = []
    threads = [enter_in_thread(window, order, n) for n in range(8)]
    # The first takes the floor's place; its download never comes back in this test, and the others
    # are let in by the watcher as its age grows (8 places by 150 ms).
    until(lambda: len(order) == 8, "all let in while the first download is still out")
    for thread in threads:
        thread.join(WAIT)
    assert window.inside == 8 and window.download_seconds is None


def test_places_go_in_the_order_asked_and_a_wait_ends_at_its_deadline() -> None:
    window = DownloadWindow(floor=1, ceiling=8)
    timed(window, 0.0, 1.0)  # size: the floor, 1
    first = held(window)
    order: list[int] = []
    for n in range(3):
        enter_in_thread(window, order, n)
        until(functools.partial(waiting, window, n + 1), "each waits in turn")
    assert window.enter(time.monotonic() + 0.05) is None, "the window is full: the wait ends at its deadline"
    assert len(window._waiting) == 3, "and gave its turn up"
    window.leave(first)
    until(functools.partial(let_in, order, 1), "the next is let in once a place is given back")
    for n in range(1, 3):
        [place] = window._out  # the one let in: its download is out; over, it leaves at its transform
        window.downloaded(place, 0.0)
        window.leave(place)
        until(functools.partial(let_in, order, n + 1), "the next is let in once a place is given back")
    assert order == [0, 1, 2]
    assert window.inside == 1 and not window._waiting


def test_a_far_host_opens_the_window_to_those_waiting() -> None:
    window = DownloadWindow(floor=1, ceiling=8)
    timed(window, 0.0, 1.0)
    first = held(window)
    order: list[int] = []
    threads = [enter_in_thread(window, order, n) for n in range(3)]
    until(lambda: len(window._waiting) == 3, "all three wait")
    for _ in range(50):  # the transforms' 1 s each now cover 2 s downloads: 1 + 5 places
        window.downloaded(first, 2.0)  # (timed as the first's: the window is full)
    until(lambda: len(order) == 3, "let in as the window grows")
    for thread in threads:
        thread.join(WAIT)
    assert window.inside == 4


def test_a_process_takes_another_batch_while_it_has_fewer_images_in_hand_than_places_and_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Images in hand before their transform: placed, waiting for a place, or handed over and yet to
    ask. Past the window's places and its floor, a process's next batch waits, so it does not sit on
    images another process with idle cores could work on (at a request's end, 1,000 images in batches
    of 32: one process ran 0.5-1.5 s alone on what it had taken)."""
    monkeypatch.setattr(downloadwindow, "OVERDUE_MIN", WAIT)  # a slow test thread makes none overdue
    window = DownloadWindow(floor=2, ceiling=8)
    timed(window, 0.0, 1.0)  # downloads take no time: the window is its floor, 2 places
    assert window.wait_for_room(0), "nothing in hand"
    window.expect([1, 2, 3])  # a batch handed over: its images have not asked for a place yet
    assert window.wait_for_room(0), "three in hand: fewer than 2 places and the floor of 2"
    window.expect([4])
    assert not window.wait_for_room(0.01), "four in hand: the wait ends at its deadline"
    first, second = window.enter(image=1), window.enter(image=2)
    assert first is not None and second is not None
    assert not window.wait_for_room(0), "asking for a place does not change what is in hand"

    taken = threading.Event()

    def next_batch() -> None:
        if window.wait_for_room(WAIT):
            taken.set()

    thread = threading.Thread(target=next_batch, daemon=True)
    thread.start()
    until(lambda: window._room_waiters == 1, "the next batch waits")
    window.downloaded(first, 0.0)
    assert not taken.is_set(), "downloaded and not transforming yet: still in hand"
    window.leave(first)  # its transform begins
    assert taken.wait(WAIT), "one fewer in hand: the next batch is taken"
    thread.join(WAIT)

    window.forget([3, 4, 99])  # their batch ended before they asked (and 99 was never expected)
    assert not window._expected
    assert window.wait_for_room(0) and window.inside == 1


def test_a_download_gone_overdue_is_not_in_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wedged host's downloads do not keep its process from taking the next batch."""
    monkeypatch.setattr(downloadwindow, "OVERDUE_MIN", 1.0)  # well past the check just after it began
    window = DownloadWindow(floor=1, ceiling=8)
    timed(window, 0.0, 1.0)  # the window is its floor, 1 place
    place = window.enter(image=1)
    window.expect([2])
    assert place is not None and not window.wait_for_room(0), "two in hand, one place and a floor of 1"
    assert window.wait_for_room(WAIT), "its download overdue, the one place is free again"


def test_a_download_out_too_long_stops_holding_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wedged host's download no longer counts once overdue: another host's images go on."""
    monkeypatch.setattr(downloadwindow, "OVERDUE_MIN", 0.2)
    window = DownloadWindow(floor=1, ceiling=8)
    timed(window, 0.0, 1.0)  # one place; a download is overdue after 0.2 s
    wedged = window.enter()
    assert wedged is not None
    order: list[int] = []
    enter_in_thread(window, order, 0)
    until(functools.partial(let_in, order, 1), "let in once the wedged download is overdue")
    assert window.inside == 2 and wedged in window._out, "the wedged one still holds its thread"
    window.downloaded(wedged, 0.0)  # it came at last (timed as instant: the window stays one place)
    [other] = window._out
    window.downloaded(other, 0.0)
    assert window.counted(time.monotonic()) == 2, "both count again, over"
    assert window.enter(time.monotonic() + 0.3) is None, "so nobody else gets in"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with serve_images() as served:
        yield served


class HeldTransforms:
    """The transform slot, closed until the test opens it: images pile up in front of it."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.waiting += 1
        assert self.open.wait(WAIT)

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.django_db
def test_images_wait_for_a_place_before_their_download_not_after_it(
    server: ImageServer, django_capture_on_commit_callbacks
) -> None:
    """With its transform held, a batch's images from a host next door are not all downloaded and
    held: as many as the window has places, and the rest wait before sending anything."""
    urls = [server.add(f"{n}.jpg", jpeg(), "image/jpeg") for n in range(8)]
    rows = "".join(f'{n},SKU{n},"{url}"\n' for n, url in enumerate(urls, start=1))
    request_pk = create(
        f"S. No.,Product Name,Input Image Urls\n{rows}".encode(), django_capture_on_commit_callbacks
    )
    ids = list(ProductImage.objects.filter(request_id=request_pk).values_list("pk", flat=True))
    window = DownloadWindow(floor=1, ceiling=8)
    timed(window, 0.0, 1.0)  # one place; two once a real download (well under 0.4 s) is timed
    gone = max(ids) + 1  # handed over, but no such image to claim (as one settled already)
    window.expect([*ids, gone])  # as the process's pipeline does when it takes the batch
    slots = HeldTransforms()
    sent_while_held: list[int] = []

    def watch() -> None:  # the batch runs in the test's thread: its database transaction is there
        until(functools.partial(waiting, window, 6), "six images wait for a place")
        until(lambda: slots.waiting == 2, "two are downloaded and wait for the transform")
        sent_while_held.append(sum(server.hits.values()))
        slots.open.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    fetcher = Fetcher(FetchLimits(), ALLOW_LOCAL)
    with ThreadPoolExecutor(max_workers=8) as threads, django_capture_on_commit_callbacks(execute=False):
        assert services.process_batch(
            [*ids, gone],
            "node@host:1",
            threads=threads,
            fetcher=fetcher,
            transform_slots=slots,
            window=window,
            lookup=lambda key: None,  # nothing made before (and no reads from the image threads)
        )
    watcher.join(WAIT)
    assert sent_while_held == [2], "only the two in the window were sent"
    assert counters(request_pk) == (8, 0)
    assert sum(server.hits.values()) == 8 and window.inside == 0 and not window._waiting
    assert not window._expected, "each image asked for a place; the one not claimed was forgotten"
