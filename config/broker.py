"""kombu's filesystem transport (the embedded broker), with messages that appear whole, once, and
consumers woken by a doorbell rather than a sleep (config/doorbell.py); and kombu's Redis transport,
surviving a lost connection (``RedisTransport``, at the end).

kombu writes a message by creating its file and then writing into it, and takes one by moving it to
the system's temporary folder and reading it there. A consumer that polls between the create and
the write reads an empty file, fails to decode it, and the worker's consumer stops: seen here in
about 1 run in 20 of a 300-image request, which then waited for the reconciler. Two consumers on one
folder (two worker processes) could also copy the same file into the same temporary path, across
file systems, and read each other's half-copies.

Here a message is written under a name no consumer takes (``….part``) and renamed into place, and a
consumer claims a message by renaming it into its own folder beside the queue: each rename is atomic
within one file system, so a message is seen whole or not at all, and by one consumer only.
"""

from __future__ import annotations

import logging
import os
import uuid
import weakref
from queue import Empty
from time import monotonic
from typing import Any, cast

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.scheduling import FairCycle

from config import doorbell

logger = logging.getLogger(__name__)

# This process's transports that wait on a doorbell, for stop_waiting (a worker's warm stop).
_waiting_transports: weakref.WeakSet[Transport] = weakref.WeakSet()


def stop_waiting() -> None:
    """End the doorbell waits of this process's consumers, now and from now on: on a worker's warm
    stop (config/celery.py), so it takes no new message and stops at once.

    Celery's loop for transports without an event loop of their own (``synloop``, which runs ours)
    looks at the stop flag only between its calls to ``drain_events(timeout=2.0)``, and makes one
    more call after it has seen it: a stopping worker went on taking tasks for up to 4 s.
    """
    for transport in list(_waiting_transports):
        transport.stop_waiting()


class Channel(filesystem.Channel):
    # kombu's two base classes disagree on _put's signature; this is the filesystem one's.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # `_get` takes only names that end in ".<queue>.msg"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc
        if folder := self.transport_options.get("doorbell_folder"):
            doorbell.ring(folder)

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        cast("Transport", self.connection).wake()  # a prefetch slot is free: the next message may come

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        wanted = f"{queue}.msg"
        taken_dir = self._taken_dir()
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            taken = os.path.join(taken_dir, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), taken)
            except FileNotFoundError:
                continue  # another consumer took it first
            try:
                with open(taken, "rb") as f:
                    payload = f.read()
                os.remove(taken)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {taken!r} from queue.") from exc
            try:
                return loads(bytes_to_str(payload))
            except ValueError:
                # Not ours to crash on: the database still knows the work, the reconciler re-queues it.
                logger.error("dropped an unreadable broker message %s (%d bytes)", name, len(payload))
                continue
        raise Empty()

    def _taken_dir(self) -> str:
        """This process's folder for the messages it takes, made once rather than on every poll."""
        pid = os.getpid()  # a forked child gets its own
        if getattr(self, "_taken", (None, ""))[0] != pid:
            folder = os.path.join(self.data_folder_in, f".taken-{pid}")
            os.makedirs(folder, exist_ok=True)
            self._taken = (pid, folder)
        return self._taken[1]


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        folder = client.transport_options.get("doorbell_folder")
        self._doorbell = doorbell.Doorbell(folder) if folder else None
        self._stopping = False
        if self._doorbell is not None:
            _waiting_transports.add(self)

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        """kombu's loop (as its virtual Transport's), waiting on the doorbell where kombu sleeps."""
        if self._doorbell is None:
            return super().drain_events(connection, timeout)
        started = monotonic()
        interval = self.polling_interval or 0.0
        if timeout and interval > timeout:
            interval = timeout
        cycle = cast(FairCycle, self.cycle)  # made by kombu's __init__
        self._doorbell.listen()  # before the first look, so a put just after it still rings
        while True:
            if self._stopping:
                raise TimeoutError()  # as if nothing came: the worker's loop then sees its stop flag
            try:
                cycle.get(self._deliver, timeout=timeout)
                return None
            except Empty:
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError() from None
                self._doorbell.wait(interval)

    def stop_waiting(self) -> None:
        """Deliver nothing more: a wait in progress ends at once, later ones at once too."""
        self._stopping = True
        self.wake()

    def wake(self) -> None:
        if self._doorbell is not None:
            self._doorbell.wake()

    def close_connection(self, connection: Any) -> None:
        super().close_connection(connection)
        if self._doorbell is not None:
            self._doorbell.close()


def _detached(channel: Any) -> bool:
    """The channel's transport has lost its connection: the channel itself may already be closed
    (``connection`` None, seen as an ack raising AttributeError in the broker-restart test) or only
    detached from its client."""
    connection = getattr(channel, "connection", None)
    return connection is None or connection.client is None


class _RedisQoS(redis.QoS):
    def ack(self, delivery_tag: str) -> None:
        # The same detached state (below), met by a task that finished after the connection was lost:
        # its ack cannot reach Redis and raised AttributeError, stopping the worker (seen in the
        # broker-restart test). The message stays in Redis's unacked index; delivered again later, it
        # claims nothing that was settled.
        if _detached(self.channel):
            logger.warning("broker connection lost: an acknowledgement is left to Redis")
            virtual.QoS.ack(self, delivery_tag)  # forget it here only
            return
        super().ack(delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:
        # kombu 5.7: when the connection to Redis is lost, the consumer's channel is closed once the
        # transport is already detached from its connection, and putting the unacknowledged messages
        # back then raises AttributeError, which stops the worker ("Unrecoverable error"; seen in the
        # broker-restart test). They stay in Redis's unacked index, which the next consumer restores
        # after the visibility timeout, and the database's reconciler re-queues their images anyway.
        delivered = self._delivered
        if client is None and _detached(self.channel) and delivered is not None:
            logger.warning("broker connection lost: %d unacknowledged messages left to Redis", len(delivered))
            delivered.clear()
            return
        super().restore_unacked(client)


class RedisChannel(redis.Channel):
    QoS = _RedisQoS


class RedisTransport(redis.Transport):
    Channel = RedisChannel
