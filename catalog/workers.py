"""A worker's claims: named after the process that holds them, released at once when it is gone.

A claim's lease (IMAGE_LEASE_SECONDS) is the last resort for a worker that vanished unseen. Where a
worker can know, it does not wait for it:

- at start-up, every claim of its node from an earlier main process is released (a power cut, a
  SIGKILL), images sent but not yet claimed go back to waiting (the messages a killed worker held
  are gone), and requests not yet dispatched are dispatched again (a broker that lost its messages);
- while it runs, a thread looks every CLAIM_CHECK_SECONDS for claims of pool processes no longer in
  its pool (a process killed by the kernel or a signal), and releases them;
- at shutdown, after its pool stopped, it releases whatever its processes still held.

Released images wait in the database; a ``feed`` task sends them again (services.dispatching).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from catalog import services
from catalog.queueing import enqueue

logger = logging.getLogger(__name__)

_main_pid = 0  # the worker's main process, set before its pool forks, so pool processes inherit it


def note_main_process() -> None:
    global _main_pid  # noqa: PLW0603 - one value per process, inherited by forked pool processes
    _main_pid = os.getpid()


def claimant_here(node: str) -> str:
    """What a claim made by this process records (see services.claimant)."""
    return services.claimant(node, _main_pid or os.getpid(), os.getpid())


def recover_at_start(node: str) -> None:
    try:
        released = services.release_claims_of_node(node, except_main_pid=os.getpid())
        forgotten = services.forget_sent()
        pending = services.pending_request_ids()
    except DatabaseError as exc:  # the reconciler's leases remain
        logger.warning("could not release the claims of earlier runs at start-up: %s", exc)
        return
    if released or forgotten:
        logger.warning(
            "start-up: %d images held by an earlier run of %s and %d sent but never claimed are queued again",
            released,
            node,
            len(forgotten),
        )
    for request_pk in pending:  # their dispatch may have been lost with the broker's messages
        enqueue("catalog.tasks.dispatch_request", request_pk)
    enqueue("catalog.tasks.feed")


def release_at_shutdown(node: str) -> None:
    pids = services.claiming_processes(node, os.getpid())
    if released := services.release_claims_of_processes(node, os.getpid(), pids):
        logger.warning("shutdown: %d images still held by this worker are queued again", released)


def watch_pool(node: str, pool: Any) -> threading.Thread:
    """Start the thread that releases the claims of pool processes that died (see the module's doc)."""

    def live_processes() -> set[int] | None:
        try:
            return {int(pid) for pid in pool.info["processes"]}
        except (AttributeError, KeyError, TypeError):
            return None  # not a pool of processes (solo, threads): claims are the main process's own

    def watch() -> None:
        while True:
            stopping.wait(settings.CLAIM_CHECK_SECONDS)
            close_old_connections()
            try:
                claiming = services.claiming_processes(
                    node, os.getpid()
                )  # before the pool is read: see below
                live = live_processes() if claiming else set()
                if live is None:
                    return
                # A process that claimed was in the pool when it claimed: absent now, it is gone.
                if (gone := claiming - live) and (
                    released := services.release_claims_of_processes(node, os.getpid(), gone)
                ):
                    logger.warning(
                        "pool processes %s died: %d images they held are queued again", gone, released
                    )
                    enqueue("catalog.tasks.feed")
            except DatabaseError as exc:
                logger.warning("could not check the pool's claims: %s", exc)

    stopping = threading.Event()  # never set: a daemon thread ends with its process
    thread = threading.Thread(target=watch, name="claim-watch", daemon=True)
    thread.start()
    return thread


_watching: list[threading.Thread] = []


def on_ready(consumer: Any) -> None:
    """At start-up, and again each time the consumer is back after losing the broker (whose
    messages may be lost with it: what was sent and not claimed is sent again)."""
    node = consumer.hostname
    recover_at_start(node)
    if not _watching:
        _watching.append(watch_pool(node, consumer.pool))
