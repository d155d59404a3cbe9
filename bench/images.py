"""The transform alone, against two loops measured in the same run on the same files.

- ours: ``sansio.images.transform`` (orientation, caps, colour handling, all of it);
- naive: open and save at quality 50, no resize (what a first version does);
- plain: the best plain Pillow loop for the same output (draft for JPEG, reduce/resize, save).

Figures are images per second on one core and on every core, and output bytes, as ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from multiprocessing import Pool

from PIL import Image

from sansio.images import TransformOptions, transform
from tests import corpus


def ours(data: bytes) -> int:
    return len(transform(data, TransformOptions()).data)


def naive(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        buf = io.BytesIO()
        fmt = im.format or "PNG"
        im.save(buf, fmt, quality=50)
        return len(buf.getvalue())


def plain(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        fmt = im.format or "PNG"
        target = (max(1, round(im.width / 2)), max(1, round(im.height / 2)))
        if fmt == "JPEG":
            im.draft(im.mode, target)
        im.load()
        if im.size == (target[0] * 2, target[1] * 2):
            out = im.reduce(2)
        elif im.size != target:
            out = im.resize(target, Image.Resampling.LANCZOS)
        else:
            out = im
        buf = io.BytesIO()
        # The same encoder settings as ours, so both loops make the same output.
        save: dict[str, int | bool] = dict(ENCODER_SETTINGS.get(fmt, {}))
        out.save(buf, fmt, quality=50, **save)
        return len(buf.getvalue())


ENCODER_SETTINGS: dict[str, dict[str, int | bool]] = {
    "JPEG": {"optimize": True},
    "PNG": {"compress_level": 3},
    "WEBP": {"method": 0},
}

LOOPS: dict[str, Callable[[bytes], int]] = {"ours": ours, "naive": naive, "plain": plain}


def _run(args: tuple[str, bytes, int]) -> int:
    name, data, repeat = args
    loop = LOOPS[name]
    return sum(loop(data) for _ in range(repeat)) // repeat


def measure(name: str, data: bytes, processes: int, seconds: float) -> tuple[float, int]:
    """Images per second over about ``seconds``, and the output size."""
    size = LOOPS[name](data)
    once = time.perf_counter()
    LOOPS[name](data)
    per_image = max(time.perf_counter() - once, 1e-4)
    repeat = max(1, int(seconds / per_image / max(processes, 1) / 4))
    jobs = [(name, data, repeat)] * (4 * processes)
    started = time.perf_counter()
    if processes == 1:
        for job in jobs:
            _run(job)
    else:
        with Pool(processes) as pool:
            started = time.perf_counter()
            pool.map(_run, jobs)
    elapsed = time.perf_counter() - started
    return repeat * len(jobs) / elapsed, size


def inputs() -> dict[str, bytes]:
    """The bench's mix (also what bench/quality.py times quality=auto on)."""
    return {
        "6 MP JPEG": corpus.encode(corpus.photo((3000, 2000)), "JPEG", quality=90),
        "1 MP JPEG": corpus.encode(corpus.photo((1200, 800)), "JPEG", quality=90),
        "RGBA PNG": corpus.png_rgba((1200, 800)),
        "WebP": corpus.webp((1200, 800)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench images")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args, _ = parser.parse_known_args(argv)
    cores = os.cpu_count() or 1
    print(f"transform benchmark, {cores} cores; images/s (higher is better), output KB")
    columns = ["ours", "plain", "naive"]
    header = f"{'input':10} {'cores':>5} " + " ".join(f"{c:>8}" for c in columns)
    print(header + f" {'ours/plain':>10} {'ours/naive':>10} " + " ".join(f"{'KB ' + c:>8}" for c in columns))
    for label, data in inputs().items():
        for processes in sorted({1, cores}):
            rates = {name: measure(name, data, processes, args.seconds) for name in LOOPS}
            r = {name: rate for name, (rate, _) in rates.items()}
            kb = {name: size / 1024 for name, (_, size) in rates.items()}
            print(
                f"{label:10} {processes:>5} {r['ours']:8.1f} {r['plain']:8.1f} {r['naive']:8.1f} "
                f"{r['ours'] / r['plain']:10.2f} {r['ours'] / r['naive']:10.2f} "
                f"{kb['ours']:8.0f} {kb['plain']:8.0f} {kb['naive']:8.0f}"
            )


if __name__ == "__main__":
    main()
