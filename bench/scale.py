"""`python -m bench scale`: a busy day on the embedded default (what issue 12 asked to show).

Prints: the 100,000-row upload (time, the web's peak memory); how fast a big request of images that
all fail fast (404s) settles; when a one-image request uploaded just behind it completes, and how far
the big one had come by then; and, after a power cut of the whole stack half-way (SIGKILL), how long
until images settle again. The image host is tests/support/imageserver.py on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import signal
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench import workdir
from bench.pipeline import csv_for, measure_big_upload, photo_jpeg
from tests.support import backends
from tests.support.imageserver import serve_images
from tests.support.stack import Stack


def settled(stack: Stack, request_id: str) -> int:
    progress = stack.status(request_id)["progress"]
    return int(progress["done"] + progress["failed"])


def measure_busy_day(root: Path, images: int, backend: dict[str, str]) -> dict[str, float]:
    with serve_images() as server:
        stack = Stack(root, {"LOG_LEVEL": "WARNING", **backend})
        stack.migrate()
        stack.start_worker("worker1", concurrency=None)
        stack.start_web()
        stack.wait_worker_ready("worker1")
        try:
            prefix = uuid.uuid4().hex
            missing = [server.url(f"{prefix}/missing/{n}.jpg") for n in range(images)]
            started = time.perf_counter()
            code, big = stack.upload(csv_for(missing, per_row=1), filename="big.csv")
            assert code == 202, big
            small_url = server.add(f"{prefix}/small.jpg", photo_jpeg(1, (640, 480)), "image/jpeg")
            small_started = time.perf_counter()
            code, small = stack.upload(csv_for([small_url]), filename="small.csv")
            assert code == 202, small
            stack.wait_complete(small["request_id"], timeout=600, poll=0.1)
            small_seconds = time.perf_counter() - small_started
            big_at_small = settled(stack, big["request_id"])

            while (before_cut := settled(stack, big["request_id"])) < images // 2:
                time.sleep(0.2)
            cut_at = time.perf_counter()
            for name in list(stack.processes):
                stack.kill(name, signal.SIGKILL)
            stack.processes.clear()
            restarted = time.perf_counter()
            stack.start_worker("worker1", concurrency=None)
            stack.start_web()
            after_cut = settled(stack, big["request_id"])
            while settled(stack, big["request_id"]) <= after_cut:
                time.sleep(0.1)
            resume_seconds = time.perf_counter() - restarted
            while not stack.status(big["request_id"])["completed"]:
                time.sleep(0.5)
            total_seconds = time.perf_counter() - started
            running = total_seconds - (restarted - cut_at) - resume_seconds
        finally:
            stack.stop()
    return {
        "images": images,
        "total_s": total_seconds,
        "rate": images / running,
        "small_s": small_seconds,
        "big_at_small": big_at_small,
        "before_cut": before_cut,
        "resume_s": resume_seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the upload measured")
    parser.add_argument("--images", type=int, default=100_000, help="fast-failing images of the big request")
    parser.add_argument(
        "--backend",
        choices=["embedded", "redis+postgresql"],
        default="embedded",
        help="the busy day on the embedded default, or on this machine's PostgreSQL and a Redis of its own",
    )
    args = parser.parse_args(argv)
    with workdir.bench_dir("bench-scale-") as tmp, ExitStack() as resources:

        def backend() -> dict[str, str]:
            """Each phase its own database and broker: a request left by one is not the next one's work."""
            if args.backend == "embedded":
                return {}
            return {
                "DATABASE_URL": resources.enter_context(backends.postgres_database()),
                "CELERY_BROKER_URL": resources.enter_context(backends.redis_broker(db=11)),
            }

        print(f"on {args.backend}")
        upload = measure_big_upload(Path(tmp) / "upload", args.rows, "http://127.0.0.1:9/x.jpg", backend())
        print(
            f"upload of {args.rows:,} rows ({upload['csv_mb']:.1f} MB): {upload['upload_ms'] / 1000:.2f} s, "
            f"web peak memory {upload['peak_mb']:.0f} MB, a status poll {upload['status_ms']:.1f} ms"
        )
        day = measure_busy_day(Path(tmp) / "day", args.images, backend())
        print(
            f"{day['images']:,} fast-failing images (404): all settled {day['total_s']:.0f} s after upload, "
            f"restart included; {day['rate']:.0f} images/s while running"
        )
        print(
            f"a one-image request uploaded just behind: completed in {day['small_s']:.2f} s, "
            f"with {day['big_at_small']:,} of the big one's images settled"
        )
        print(
            f"power cut (SIGKILL of the stack) at {day['before_cut']:,} settled: images settle again "
            f"{day['resume_s']:.1f} s after the restart began"
        )


if __name__ == "__main__":
    main()
