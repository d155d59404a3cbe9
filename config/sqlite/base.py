"""Django's SQLite backend, with its writers queued in the kernel rather than in SQLite's busy handler.

Every transaction here begins IMMEDIATE (config/settings/database.py): it takes the database's write
lock at once. A second writer then waits in SQLite's busy handler, which polls with sleeps that grow
to 100 ms (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms) and is not woken when the lock frees: with
a worker's ten batch threads claiming and settling at once, a loser kept sleeping past one free lock
after another. Re-running a catalogue of 1,000 images (every image a 304, so little but database
writes), claims took up to 640 ms and settlements up to 650 ms of a 0.9 s run (30 November 2026).

So a transaction first takes a one-slot machine semaphore (catalog/machineslots.py: an ``flock`` on a
file beside the database) and gives it back when it commits or rolls back: a waiting writer, in any
process of the machine (SQLite needs them all on one machine), tries again every millisecond, so it
is never more than that late for a free lock, and gives up with SQLite's own "database is locked"
after the same timeout as SQLite's (the OPTIONS' ``timeout``). A blocking flock would wake at once,
but could not give up. Within a process the writers queue on a lock of its own first, so one thread a
process polls and the lock passes between a process's threads at once. The kernel gives the lock
back if a process dies holding it. Writes outside a transaction (an UPDATE in autocommit) still
meet SQLite's busy handler, as before. Python's sqlite3 module offers no way to install a busy handler
of our own. With the lock, the longest claim took 146 ms and the longest settlement 137 ms of that
re-run (the writers queue: the database's one write lock is the re-run's bottleneck), and the re-run
took 0.72-0.80 s, not 0.83-1.02 s (`python -m bench reruns`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from django.db.backends.sqlite3 import base

from catalog.machineslots import MachineSlots

WRITER_LOCK_POLL = 0.001  # seconds between tries for the writers' lock

# Per database, this process's writers queue here first, so only one thread of a process polls the
# machine's lock, and it passes between threads of a process at once, not up to a poll later.
_process_writers: dict[str, threading.Lock] = {}
_process_writers_guard = threading.Lock()
# A child forked while a thread of its parent held one must not inherit it taken.
os.register_at_fork(after_in_child=_process_writers.clear)


def _process_writer_lock(path: str) -> threading.Lock:
    with _process_writers_guard:
        return _process_writers.setdefault(path, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    _writers: MachineSlots | None = None  # the machine's writers' lock of this database (one slot)
    _held: int | None = None  # the descriptor holding its slot, from BEGIN to COMMIT or ROLLBACK
    _process_lock: threading.Lock | None = None  # this process's, while it holds the slot

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        path = str(conn_params.get("database", ""))
        if path and path != ":memory:" and not path.startswith("file:"):
            database = Path(path)
            self._writers = MachineSlots(
                database.parent, f"{database.name}.writers", 1, pause_max=WRITER_LOCK_POLL
            )
        return connection

    def _start_transaction_under_autocommit(self) -> None:
        if self._writers is not None and self._held is None:
            self._wait_for_writers_lock(self._writers)
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # private, so not in django-stubs
        except BaseException:
            self._stop_writing()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # private, so not in django-stubs
        finally:
            self._stop_writing()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # private, so not in django-stubs
        finally:
            self._stop_writing()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # private, so not in django-stubs
        finally:
            self._stop_writing()

    def _wait_for_writers_lock(self, writers: MachineSlots) -> None:
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))  # as sqlite3.connect's default
        deadline = time.monotonic() + timeout
        process_lock = _process_writer_lock(str(writers.base))
        if not process_lock.acquire(timeout=timeout):
            self._locked()
        self._process_lock = process_lock

        def still_waiting() -> None:
            if time.monotonic() >= deadline:
                self._stop_writing()
                self._locked()

        self._held = writers.take(still_waiting)

    def _locked(self) -> NoReturn:
        with self.wrap_database_errors:  # as django.db.OperationalError, as SQLite's own
            raise sqlite3.OperationalError("database is locked") from None

    def _stop_writing(self) -> None:
        """Give the machine's slot back (closing its descriptor releases the flock), then the process's."""
        if self._held is not None:
            os.close(self._held)
            self._held = None
        if self._process_lock is not None:
            self._process_lock.release()
            self._process_lock = None
