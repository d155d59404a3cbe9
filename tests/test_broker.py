"""The embedded broker on real files: under concurrent writers and readers every message arrives
whole and exactly once, and a broken file never stops a consumer. The Redis transport, on the real
server: a channel closed after its connection was lost does not stop the worker."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection, Message

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


def test_redis_channel_closed_after_its_connection_was_lost_does_not_stop_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kombu 5.7 raised AttributeError here ("Unrecoverable error" in the broker-restart test): closing
    a channel whose transport was already detached tried to put its unacknowledged messages back."""
    with redis_broker(db=8) as url:  # the real server, started if it is down
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
