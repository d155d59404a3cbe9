"""The CPU an image costs on the service's own path, one image at a time, without the noise of a run.

`python -m bench imagepath [--images N]` (not in `make bench`: it explains the pipeline bench's
figures, it does not add one). The end-to-end bench (bench/pipeline.py) moves by ±0.05 from run to
run on these machines; a change worth 1 ms an image is lost in it. Here each case runs in a fresh
process of its own, one image at a time, and counts that process's CPU:

- plain transform: the plain loop's transform (bench/pipeline.py) over the same bytes in memory;
- service transform: ``sansio.images.transform`` with the service's options;
- service path: the real ``services.process_batch`` in 16-image batches (claim, download from a
  local host, content hash, reuse lookup, transform, store, settle) over SQLite and files, with its
  images run inline (one thread: no overlap to hide or add CPU);

the service's cases with a worker process's memory settings (config/celery.py), the plain one
without them, as the pipeline bench runs it; ``--repeat`` times interleaved, medians printed: one
process's figure still moves by about 1 ms from minute to minute. (Until 30 November the worker also
made the comparison page's "before" picture of every image, and this bench ran each case with and
without it; they are made on demand now, catalog/services/previews.py.) The local host runs in its
own process: its CPU is not counted.

The service path also prints where its CPU went, step by step (``STEPS``: the CPU time of the thread
that ran each call, the reuse lookup's in its database thread), medians over the runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from bench import workdir
from bench.pipeline import csv_for, photo_jpeg, plain_transform, start_host, with_comment

BATCH = 16
CASES = ("plain transform", "service transform", "service path")
# The service path's steps, timed where the path calls them: (module, attribute, what it is).
STEPS = (
    ("catalog.fetch.client", "Fetcher.fetch_image", "download (with its log line)"),
    ("catalog.services.reuse", "SourceSeen.of", "content hash"),
    ("catalog.services.reuse", "find_output", "reuse lookup"),
    ("catalog.services.producing", "transform", "transform"),
    ("catalog.services.producing", "save_bytes", "storing the output"),
    ("catalog.services.batches", "claim_images", "claiming a batch"),
    ("catalog.services.batches", "settle", "settling a batch"),
    ("logging", "Logger.info", "log lines"),
)


class StepTimes:
    """CPU seconds of the thread that ran each call of the wrapped functions, by step."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self._lock = threading.Lock()

    def wrap(self, module: str, attribute: str, step: str) -> None:
        *path, name = attribute.split(".")
        owner: Any = importlib.import_module(module)
        for part in path:
            owner = getattr(owner, part)
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.cpu[step] = self.cpu.get(step, 0.0) + spent

        setattr(owner, name, timed)


class Inline(Executor):
    """Runs each submitted call at once, in the caller's thread: the path without threads."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _cpu_ms_each(run: Callable[[], None], count: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / count * 1000


def _each(run: Callable[[bytes], object], items: list[bytes]) -> None:
    for item in items:
        run(item)


def _child(case: str, count: int, images: Path) -> dict[str, float]:
    """In a fresh process (settings from its environment): one case, its CPU ms an image."""
    import django

    django.setup()
    if case != "plain transform":  # the plain loop's processes are plain; the worker's are tuned
        from config.celery import reuse_image_memory

        reuse_image_memory()
    files = sorted(images.glob("*.jpg"), key=lambda p: int(p.stem))[: count + BATCH]
    if case == "plain transform":
        data = [p.read_bytes() for p in files]
        plain_transform(data[0])
        return {"ms": _cpu_ms_each(lambda: _each(plain_transform, data[1 : count + 1]), count)}
    if case == "service transform":
        from catalog.models import ProcessingRequest
        from catalog.services.producing import transform_options
        from sansio.images import transform

        options = transform_options(ProcessingRequest())
        data = [p.read_bytes() for p in files]
        transform(data[0], options)
        inputs = data[1 : count + 1]
        return {"ms": _cpu_ms_each(lambda: _each(lambda d: transform(d, options), inputs), count)}
    return _service_path(files, count)


def _service_path(files: list[Path], count: int) -> dict[str, float]:
    from django.core.management import call_command

    from catalog import services, workerresources
    from catalog.models import ImageStatus, ProductImage

    call_command("migrate", verbosity=0)
    host, port = start_host(files[0].parent)
    try:
        urls = [f"http://127.0.0.1:{port}/{p.name}" for p in files]
        created = services.create_request(
            io.BytesIO(csv_for(urls, per_row=1)),
            name="imagepath.csv",
            options=services.RequestOptions(),
            base_url="http://127.0.0.1",
        )
        ids = list(
            ProductImage.objects.filter(request_id=created.pk).order_by("pk").values_list("pk", flat=True)
        )

        def batch(image_ids: list[int]) -> None:
            services.process_batch(
                image_ids,
                "bench-imagepath",
                threads=Inline(),
                fetcher=workerresources.fetcher(),
                transform_slots=workerresources.transform_slots(),
                lookup=workerresources.find_output,
            )

        batch(ids[:BATCH])  # warm: connections, caches, the first files and folders
        rest = ids[BATCH:]

        def all_batches() -> None:
            for start in range(0, len(rest), BATCH):
                batch(rest[start : start + BATCH])

        steps = StepTimes()
        for module, attribute, step in STEPS:
            steps.wrap(module, attribute, step)
        ms = _cpu_ms_each(all_batches, len(rest))
        done = ProductImage.objects.filter(pk__in=rest, status=ImageStatus.DONE).count()
        if done != len(rest):
            raise SystemExit(f"only {done} of {len(rest)} images done: the figure would mean nothing")
        return {"ms": ms} | {f"step {step}": cpu * 1000 / len(rest) for step, cpu in steps.cpu.items()}
    finally:
        host.terminate()
        host.wait()


def _run_case(case: str, count: int, images: Path) -> dict[str, float]:
    """The child's figures: ``ms``, and for the service path ``step <what>`` (CPU ms an image)."""
    with workdir.bench_dir("bench-imagepath-") as var:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # SQLite under VAR_DIR
        env |= {
            "APP_ENV": "development",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": var,
            "FETCH_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8",
        }
        args = [sys.executable, "-m", "bench.imagepath", "--child", case, "--images", str(count), str(images)]
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"{case}: {out.stderr.strip()[-2000:]}")
        figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return figures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench imagepath")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="1600x1200", help="input image size, WxH (as bench pipeline)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median)")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("folder", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.images, Path(args.folder))))
        return
    width, height = (int(v) for v in args.size.split("x"))
    with workdir.bench_dir("bench-imagepath-images-") as folder:
        base = photo_jpeg(3, (width, height))
        for n in range(args.images + BATCH):  # other bytes each: no output is reused
            Path(folder, f"{n}.jpg").write_bytes(with_comment(base, f"imagepath-{n}"))
        print(
            f"{args.images} JPEGs of {width}x{height} ({len(base) // 1024} KB), one at a time, "
            "CPU ms an image of the process (each case in a fresh one):"
        )
        runs: dict[str, list[float]] = {case: [] for case in CASES}
        step_runs: dict[str, list[float]] = {}
        for _ in range(args.repeat):  # interleaved: a slow minute of the machine falls on every case
            for case in CASES:
                figures = _run_case(case, args.images, Path(folder))
                runs[case].append(figures["ms"])
                for key, ms in figures.items():
                    if key.startswith("step "):
                        step_runs.setdefault(key.removeprefix("step "), []).append(ms)
        medians = {case: statistics.median(runs[case]) for case in CASES}
        shown = ", ".join(f"{case} {ms:.2f}" for case, ms in medians.items())
        ratio = medians["service path"] / medians["plain transform"]
        print(f"  {shown}; the path is {ratio:.2f}x the plain transform")
        spread = max(max(v) - min(v) for v in runs.values())
        print(f"  (medians of {args.repeat} runs; the widest spread of one case's runs: {spread:.2f} ms)")
        print("  the service path's steps, CPU ms an image (nested calls count in both):")
        for _, _, step in STEPS:
            print(f"    {step:40s} {statistics.median(step_runs.get(step, [0.0])):.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
