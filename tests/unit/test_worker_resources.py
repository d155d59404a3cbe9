"""A worker process's resources are made once, however many of its batch threads ask first."""

from __future__ import annotations

import threading
import time

from catalog.workerresources import once


def test_what_many_threads_ask_for_at_once_is_made_once() -> None:
    made: list[object] = []

    @once
    def resource() -> object:
        time.sleep(0.05)  # long enough for every thread to ask while the first makes it
        made.append(object())
        return made[-1]

    got: list[object] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        got.append(resource())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1
    assert got == made * 8
