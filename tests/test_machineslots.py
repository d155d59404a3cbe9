"""The machine-wide semaphore (catalog/machineslots.py) across real processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

from catalog.machineslots import MachineSlots, ProcessThenMachine


def _hold_forever(directory: Path, ready: threading.Event) -> None:
    slots = MachineSlots(directory, "t", 1)
    slots.take()
    ready.set()
    threading.Event().wait()


def test_a_slot_held_by_another_process_is_taken_and_given_back_when_it_dies(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_forever, args=(tmp_path, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(30)
        slots = MachineSlots(tmp_path, "t", 1)
        assert slots.try_take() is None, "its one slot is held by the other process"
    finally:
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    fd = MachineSlots(tmp_path, "t", 1).take()  # the kernel gave the dead process's lock back
    os.close(fd)


def test_never_more_holders_than_slots(tmp_path: Path) -> None:
    both = ProcessThenMachine(threading.BoundedSemaphore(3), MachineSlots(tmp_path, "t", 2))
    lock = threading.Lock()
    now = {"in": 0, "most": 0}

    def work() -> None:
        for _ in range(50):
            with both:
                with lock:
                    now["in"] += 1
                    now["most"] = max(now["most"], now["in"])
                time.sleep(0.001)  # long enough for others to try
                with lock:
                    now["in"] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert now["in"] == 0
    assert 1 <= now["most"] <= 2
