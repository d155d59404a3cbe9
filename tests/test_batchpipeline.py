"""A worker process's batches overlapping (catalog/batchpipeline.py): room for ``depth`` at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from catalog.batchpipeline import BatchPipeline
from catalog.downloadwindow import DownloadWindow
from tests.test_downloadwindow import until

pytestmark = pytest.mark.django_db  # a batch's thread closes its database connection when it ends

WAIT = 30  # seconds: a deadline for conditions that come at once unless something is wrong


def blocked_batch(started: threading.Event, go_on: threading.Event) -> Callable[[], None]:
    def batch() -> None:
        started.set()
        assert go_on.wait(WAIT)

    return batch


def test_run_returns_while_there_is_room_and_waits_when_depth_batches_are_in_hand() -> None:
    pipeline = BatchPipeline(2)
    go_on = threading.Event()
    first, second, third = threading.Event(), threading.Event(), threading.Event()
    pipeline.run(blocked_batch(first, go_on))
    pipeline.run(blocked_batch(second, go_on))
    assert first.wait(WAIT) and second.wait(WAIT), "both run at once: run() did not wait for the first"

    returned = threading.Event()

    def third_task() -> None:
        pipeline.run(blocked_batch(third, go_on))
        returned.set()

    thread = threading.Thread(target=third_task, daemon=True)
    thread.start()
    assert not pipeline.idle(timeout=0), "two batches in hand"
    assert not returned.is_set() and not third.is_set(), "a third batch waits for room"
    go_on.set()  # the first two end: room for the third
    assert returned.wait(WAIT) and third.wait(WAIT)
    assert pipeline.idle(timeout=WAIT)


def test_a_batch_that_raises_is_logged_and_frees_its_room(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = BatchPipeline(1)

    def broken() -> None:
        raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR, logger="catalog.batchpipeline"):
        pipeline.run(broken)
        assert pipeline.idle(timeout=WAIT), "its room came back"
    done = threading.Event()
    pipeline.run(done.set)
    assert done.wait(WAIT), "the next batch runs"
    assert any("ended with an error" in message for message in caplog.messages)


def test_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        BatchPipeline(0)


def test_a_batch_that_frees_its_room_lets_the_next_one_run_while_it_goes_on() -> None:
    pipeline = BatchPipeline(1)
    go_on, first, second = threading.Event(), threading.Event(), threading.Event()

    def waiting_on_a_wedged_host() -> None:
        first.set()
        pipeline.free_room()
        pipeline.free_room()  # once only: the room is not given twice
        assert go_on.wait(WAIT)

    pipeline.run(waiting_on_a_wedged_host)
    assert first.wait(WAIT)
    pipeline.run(blocked_batch(second, go_on))
    assert second.wait(WAIT), "the next batch runs beside the one that freed its room"
    assert not pipeline.idle(timeout=0), "two batches run (the first gave its room up, not its claims)"
    go_on.set()
    assert pipeline.idle(timeout=WAIT)
    pipeline.free_room()  # outside a batch's thread: nothing


def test_at_most_depth_batches_give_their_room_up() -> None:
    """So a process holds at most twice ``depth`` batches, however many have only transforms left."""
    pipeline = BatchPipeline(1)
    go_on = threading.Event()
    started = [threading.Event() for _ in range(3)]

    def giving_up(n: int) -> Callable[[], None]:
        def batch() -> None:
            started[n].set()
            pipeline.free_room()
            assert go_on.wait(WAIT)

        return batch

    pipeline.run(giving_up(0))
    assert started[0].wait(WAIT)
    pipeline.run(giving_up(1))  # the first gave its room up: this one runs beside it
    assert started[1].wait(WAIT)
    # The second could not give its room up (one has already): the next batch must wait for a room.
    # (Read from the semaphore itself: a wait for something that must not happen would only be a sleep.)
    assert not pipeline._room.acquire(blocking=False)
    go_on.set()
    pipeline.run(giving_up(2))
    assert started[2].wait(WAIT)
    assert pipeline.idle(timeout=WAIT)


def test_with_a_window_the_next_batch_waits_while_the_images_in_hand_fill_its_places() -> None:
    """The images of the batches in hand count until they ask for a place and then until their
    transform; those a batch never started are forgotten when it ends."""
    window = DownloadWindow(floor=2, ceiling=2)  # nothing timed: 2 places, in hand at most 2 + 2
    pipeline = BatchPipeline(8, window, room_wait=WAIT)
    go_on, first, second = threading.Event(), threading.Event(), threading.Event()
    pipeline.run(blocked_batch(first, go_on), images=[1, 2, 3, 4])
    assert first.wait(WAIT)
    returned = threading.Event()

    def second_task() -> None:
        pipeline.run(blocked_batch(second, go_on), images=[5, 6])
        returned.set()

    thread = threading.Thread(target=second_task, daemon=True)
    thread.start()
    until(lambda: window._room_waiters == 1, "the second batch waits for room in the window")
    assert not returned.is_set() and not second.is_set()
    place = window.enter(image=1)
    assert place is not None
    window.leave(place)  # image 1's transform began: three in hand
    assert returned.wait(WAIT) and second.wait(WAIT), "the second batch is taken"
    go_on.set()
    assert pipeline.idle(timeout=WAIT)
    assert not window._expected, "what the batches never started is forgotten as they end"
