"""The embedded broker on real files: under concurrent writers and readers every message arrives
whole and exactly once, a broken file never stops a consumer, and a waiting consumer is woken by a put
or an ack rather than its polling interval. The Redis transport, on the real server: a channel closed
after its connection was lost does not stop the worker."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection, Consumer, Message, Queue

from config import broker, doorbell
from tests.support.backends import redis_broker

PRODUCERS, CONSUMERS, EACH = 3, 3, 400
REDIS_TRANSPORT = "config.broker:RedisTransport"


def channel(folder: Path) -> Any:
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    connection = Connection("filesystem://", transport="config.broker:Transport", transport_options=options)
    return connection.channel()


def test_concurrent_writers_and_readers_get_every_message_whole_once(tmp_path: Path) -> None:
    received: list[int] = []
    errors: list[BaseException] = []
    producing = threading.Event()

    def produce(start: int) -> None:
        out = channel(tmp_path)
        for n in range(start, start + EACH):
            out._put("images", {"n": n, "padding": "x" * 2000})

    def consume() -> None:
        inbox = channel(tmp_path)
        try:
            while True:
                try:
                    received.append(inbox._get("images")["n"])
                except Empty:
                    if not producing.is_set():
                        return
        except BaseException as exc:  # the bug this guards against: a half-written file
            errors.append(exc)

    producing.set()
    producers = [threading.Thread(target=produce, args=(p * EACH,)) for p in range(PRODUCERS)]
    consumers = [threading.Thread(target=consume) for _ in range(CONSUMERS)]
    for thread in producers + consumers:
        thread.start()
    for thread in producers:
        thread.join()
    producing.clear()
    for thread in consumers:
        thread.join()

    assert errors == []
    assert sorted(received) == list(range(PRODUCERS * EACH)), "each message once, none lost"


def test_an_unreadable_message_is_dropped_and_reading_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Named to sort before any message kombu names (monotonic milliseconds never start with 0), so the
    # first read meets it whatever the clock says.
    (tmp_path / "0_broken.images.msg").write_bytes(b"")
    inbox = channel(tmp_path)
    inbox._put("images", {"n": 7})
    with caplog.at_level(logging.ERROR, logger="config.broker"):
        assert inbox._get("images") == {"n": 7}
    assert "dropped an unreadable broker message 0_broken.images.msg" in caplog.text
    with pytest.raises(Empty):
        inbox._get("images")


def connect(folder: Path) -> Connection:
    """A connection whose consumers would sleep an hour between looks, if no doorbell woke them."""
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "doorbell_folder": str(folder / "doorbells"),
        "store_processed": False,
        "polling_interval": 3600,
    }
    (folder / "queue").mkdir(exist_ok=True)
    return Connection("filesystem://", transport="config.broker:Transport", transport_options=options)


def when_waiting(folder: Path, then: Any) -> threading.Thread:
    """Call ``then`` from another thread once a consumer has made its doorbell (it is waiting)."""

    def run() -> None:
        while not list((folder / "doorbells").glob("*.fifo")):
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_waiting_consumer_is_woken_by_a_put_from_another_connection(tmp_path: Path) -> None:
    with connect(tmp_path) as consumer_side, connect(tmp_path) as producer_side:
        inbox = consumer_side.SimpleQueue("images")
        thread = when_waiting(tmp_path, lambda: producer_side.SimpleQueue("images").put({"n": 1}))
        message = inbox.get(block=True, timeout=30)  # an hour's polling interval: only a ring is this fast
        thread.join()
        assert message.payload == {"n": 1}


def test_an_ack_wakes_the_consumer_for_its_next_message(tmp_path: Path) -> None:
    with connect(tmp_path) as connection:
        producer = connection.Producer()
        for n in (1, 2):
            producer.publish({"n": n}, routing_key="images", declare=[Queue("images")])
        received: list[Message] = []
        with Consumer(connection, [Queue("images")], callbacks=[lambda _, m: received.append(m)]) as c:
            c.qos(prefetch_count=1)
            connection.drain_events(timeout=30)
            assert len(received) == 1
            # One message in hand fills the prefetch: the next waits for its ack, which frees the slot.
            thread = when_waiting(tmp_path, received[0].ack)
            connection.drain_events(timeout=30)
            thread.join()
        assert sorted(m.payload["n"] for m in received) == [1, 2]


def test_a_warm_stop_ends_a_consumer_wait_at_once_and_it_takes_no_new_message(tmp_path: Path) -> None:
    """Celery's loop for our transport sees a worker's stop flag only between its waits: the stop
    ends the wait (an hour's polling interval, no timeout: only the stop can end it) and the next."""
    with connect(tmp_path) as connection:
        received: list[Message] = []
        outcome: list[BaseException] = []

        def wait_unbounded() -> None:
            try:
                connection.drain_events(timeout=None)
            except BaseException as exc:
                outcome.append(exc)

        with Consumer(connection, [Queue("images")], callbacks=[lambda _, m: received.append(m)]):
            waiting = threading.Thread(target=wait_unbounded, daemon=True)
            waiting.start()
            stopper = when_waiting(tmp_path, broker.stop_waiting)
            waiting.join(timeout=30)
            stopper.join()
            assert not waiting.is_alive(), "the stop did not end the wait"
            assert len(outcome) == 1
            assert isinstance(outcome[0], TimeoutError)

            connection.Producer().publish({"n": 1}, routing_key="images", declare=[Queue("images")])
            with pytest.raises(TimeoutError):
                connection.drain_events(timeout=None)
        assert received == []


def test_a_ring_removes_the_doorbells_of_consumers_that_are_gone(tmp_path: Path) -> None:
    folder = str(tmp_path)
    live = doorbell.Doorbell(folder)
    assert live.wait(0) is False, "not rung yet"
    os.mkfifo(tmp_path / "1-gone.fifo")  # what a killed consumer leaves: a pipe nobody reads
    doorbell.ring(folder)
    assert live.wait(30) is True
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(live._path)]
    live.close()
    assert list(tmp_path.iterdir()) == []


def test_redis_channel_closed_after_its_connection_was_lost_does_not_stop_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kombu 5.7 raised AttributeError here ("Unrecoverable error" in the broker-restart test): closing
    a channel whose transport was already detached tried to put its unacknowledged messages back."""
    with redis_broker(db=8) as url:  # a real server of this run's own
        connection = Connection(url, transport=REDIS_TRANSPORT)
        chan: Any = connection.channel()  # the Redis channel (kombu types it as the abstract one)
        chan.queue_declare("q")
        chan.basic_publish(chan.prepare_message("body"), "", "q")
        message: Message | None = chan.basic_get("q", no_ack=False)
        assert message is not None, "the message was not received"
        assert len(chan.qos._delivered) == 1
        chan.connection.client = None  # what a lost connection leaves behind
        with caplog.at_level(logging.WARNING, logger="config.broker"):
            chan.close()
        assert "1 unacknowledged messages left to Redis" in caplog.text
        connection.release()


def test_a_task_acknowledged_after_the_connection_was_lost_does_not_stop_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kombu 5.7 raised AttributeError here too (the broker-restart test, once): an ack once the
    transport was detached."""
    with redis_broker(db=8) as url:
        connection = Connection(url, transport=REDIS_TRANSPORT)
        chan: Any = connection.channel()
        chan.queue_declare("q")
        chan.basic_publish(chan.prepare_message("body"), "", "q")
        message: Message | None = chan.basic_get("q", no_ack=False)
        assert message is not None, "the message was not received"
        chan.connection.client = None  # what a lost connection leaves behind
        with caplog.at_level(logging.WARNING, logger="config.broker"):
            message.ack()
        assert "an acknowledgement is left to Redis" in caplog.text
        assert message.acknowledged
        connection.release()
