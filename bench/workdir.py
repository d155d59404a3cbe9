"""Where the benches keep their files: the images their host serves, and the service's database,
outputs and logs.

The service writes a new file for each image (its output); the plain Pillow loop writes none. On this
kind of machine a new file in /tmp cost 0.8-0.9 ms of CPU, against 0.03 ms in another folder of the same
disk and 0.025 ms in /dev/shm (30 November 2026): the disk is ext4 without a journal, which checks each
inode it could give a new file against the recently deleted ones, and the tests and earlier bench runs
delete thousands of files in /tmp. At 13 ms of CPU an image, that artefact of the machine alone took
0.05 off the service's ratio to the plain loop, and it is no cost of the service: deployed, it writes
its outputs to S3, or to VAR_DIR (var/ beside the code, not /tmp).

So the benches keep their files in /dev/shm (memory, where a new file costs what it does on a healthy
disk) when it has room for them, else in the system's temporary folder; ``BENCH_DIR`` names another
folder. ``describe`` says where, and what a new file costs there and in the system's temporary folder,
so a run on a folder as slow as this /tmp says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")
# Room for the pipeline bench's 1,000 images of 1.2 MB, their outputs and databases, twice over.
ROOM_NEEDED = 4 * 1024**3


def base() -> str | None:
    """The folder the benches' temporary folders go in (None: the system's temporary folder)."""
    chosen = os.environ.get("BENCH_DIR", "").strip()
    if chosen:
        if not Path(chosen).is_dir():
            raise SystemExit(f"BENCH_DIR={chosen} is not a folder")
        return chosen
    shm = SHARED_MEMORY
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= ROOM_NEEDED:
        return str(shm)
    return None


def bench_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder of a bench's own, in ``base()``."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=base())


def new_file_ms(folder: str, files: int = 200, size: int = 56_000) -> float:
    """CPU ms to create and write one file of ``size`` bytes (an output's) in ``folder``."""
    data = os.urandom(size)
    with tempfile.TemporaryDirectory(prefix="bench-newfile-", dir=folder) as inside:
        started = time.process_time()
        for n in range(files):
            fd = os.open(os.path.join(inside, f"{n}.jpg"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return (time.process_time() - started) * 1000 / files


def describe() -> str:
    """Where the benches' files are, and what a new file costs there (and in the system's temporary
    folder, when that is elsewhere)."""
    here = base() or tempfile.gettempdir()
    line = f"files in {here} (a new output file: {new_file_ms(here):.2f} ms of CPU"
    system = tempfile.gettempdir()
    if os.path.realpath(system) != os.path.realpath(here):
        line += f"; in {system}: {new_file_ms(system):.2f} ms"
    return line + ")"
