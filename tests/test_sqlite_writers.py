"""The SQLite backend's writers' lock (config/sqlite): a transaction holds it from its BEGIN to its
COMMIT or ROLLBACK, and a writer that cannot have it in the timeout fails as SQLite would."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection, transaction

from catalog.models import ProcessingRequest

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own backend only")


@contextmanager
def lock_file() -> Iterator[int]:
    """A descriptor of the writers' lock file of its own (as another process's)."""
    # The lock's one slot file (catalog/machineslots.py names a slot's file ``<name>.slot<n>``).
    fd = os.open(f"{connection.settings_dict['NAME']}.writers.slot0", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)


def lock_is_free(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


@pytest.mark.django_db(transaction=True)
def test_a_transaction_holds_the_writers_lock_until_it_commits_or_rolls_back() -> None:
    connection.ensure_connection()
    with lock_file() as other:
        assert lock_is_free(other)
        with transaction.atomic():
            ProcessingRequest.objects.count()
            assert not lock_is_free(other), "held from the BEGIN"
        assert lock_is_free(other), "given back at the COMMIT"
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            assert not lock_is_free(other)
            _ = 1 / 0
        assert lock_is_free(other), "given back at the ROLLBACK"
        connection.close()
        assert lock_is_free(other)


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_cannot_have_the_lock_in_the_timeout_is_told_the_database_is_locked() -> None:
    connection.ensure_connection()
    options = connection.settings_dict["OPTIONS"]
    timeout = options.get("timeout")
    options["timeout"] = 0.05
    try:
        with lock_file() as other:
            fcntl.flock(other, fcntl.LOCK_EX)  # another process's transaction, never ending
            with pytest.raises(OperationalError, match="database is locked"), transaction.atomic():
                pass
            fcntl.flock(other, fcntl.LOCK_UN)
            with transaction.atomic():  # and the connection is usable once it is free
                ProcessingRequest.objects.count()
    finally:
        options["timeout"] = timeout
