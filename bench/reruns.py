"""A catalogue sent again: first run, the same again, and again with 5% of its images changed.

`python -m bench reruns [--images N]` (also run by `make bench`). One service (gunicorn, a Celery
worker with its default pool, SQLite, files) and one image host (bench/imagehost.py, which sends
ETag/Last-Modified and answers 304) for all three runs, so they differ only in what the host has.

Every image is its own bytes (the bench's pictures with a JPEG comment naming the image), so the first
run transforms all of them. Targets: the re-run completes >= 10x faster than the first, with no image
downloaded whole; with 5% changed at the host, exactly those are downloaded and transformed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import urllib3

from bench import workdir
from bench.pipeline import cpu_by_role, csv_for, photo_jpeg, wait_complete, with_comment
from tests.support.stack import Stack, free_port


def host_answers(port: int) -> dict[str, int]:
    return dict(json.loads(urllib3.request("GET", f"http://127.0.0.1:{port}/__stats").data))


def one_run(stack: Stack, body: bytes, port: int) -> dict[str, float]:
    """Upload to completion: seconds, images downloaded whole (200s) and unchanged (304s), reused."""
    before = host_answers(port)
    cpu_before = cpu_by_role(stack, None)
    started = time.perf_counter()
    code, accepted = stack.upload(body)
    assert code == 202, accepted
    # Polled on the pages' one-query progress: the API's status lists up to 1,000 images with their
    # URLs, and 20 of those a second took a share of the cores the re-run itself needs.
    wait_complete(stack, accepted["request_id"], timeout=900, poll=0.05)
    seconds = time.perf_counter() - started
    cpu = sum(cpu_by_role(stack, None).values()) - sum(cpu_before.values())
    status = stack.status(accepted["request_id"])
    after = host_answers(port)
    progress = status["progress"]
    assert status["status"] == "completed", status["errors"][:3]
    return {
        "seconds": seconds,
        "cores": cpu / seconds,  # the service's processes' CPU over the run: how busy it kept the cores
        "whole": after.get("200", 0) - before.get("200", 0),
        "unchanged": after.get("304", 0) - before.get("304", 0),
        "reused": progress["reused"],
        "transformed": progress["done"] - progress["reused"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench reruns")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", default="1600x1200", help="input image size, WxH")
    parser.add_argument("--changed", type=float, default=0.05, help="share of images changed at the host")
    args, _ = parser.parse_known_args(argv)  # `make bench` passes every bench the same options
    width, height = (int(v) for v in args.size.split("x"))

    with workdir.bench_dir("bench-reruns-") as tmp:
        root = Path(tmp)
        served = root / "served"
        served.mkdir()
        pictures = [photo_jpeg(seed, (width, height)) for seed in range(50)]
        for n in range(args.images):
            (served / f"{n}.jpg").write_bytes(with_comment(pictures[n % 50], f"image {n}"))
        port = free_port()
        host = subprocess.Popen(
            [sys.executable, "-m", "bench.imagehost", str(port), str(served)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deployed = {"RECONCILE_INTERVAL_SECONDS": "30", "LOG_LEVEL": "INFO"}
        stack = Stack(root / "service", {"FETCH_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32", **deployed})
        try:
            stack.migrate()
            stack.start_worker("bench", concurrency=None)
            stack.start_web()
            stack.wait_worker_ready("bench")
            body = csv_for([f"http://127.0.0.1:{port}/{n}.jpg" for n in range(args.images)])
            first = one_run(stack, body, port)
            again = one_run(stack, body, port)
            changed = range(0, args.images, round(1 / args.changed))  # every 20th image
            later = time.time() + 10  # a later mtime: a new ETag and Last-Modified
            for n in changed:
                path = served / f"{n}.jpg"
                path.write_bytes(with_comment(pictures[n % 50], f"image {n}, edited"))
                os.utime(path, (later, later))
            edited = one_run(stack, body, port)
        finally:
            stack.stop()
            host.terminate()
            host.wait()

    print(f"{args.images} JPEGs of {width}x{height}, each its own bytes; {os.cpu_count()} cores")
    for name, run in (("first run", first), ("same again", again), (f"{len(changed)} changed", edited)):
        print(
            f"  {name:<12} {run['seconds']:7.2f} s  downloaded whole {run['whole']:5.0f}, unchanged (304) "
            f"{run['unchanged']:5.0f}, transformed {run['transformed']:5.0f}, reused {run['reused']:5.0f}; "
            f"{run['cores']:.2f} cores busy"
        )
    speed_up, edited_speed_up = first["seconds"] / again["seconds"], first["seconds"] / edited["seconds"]
    print(f"  re-run speed-up: {speed_up:6.1f}x   (target >= 10, none downloaded whole)")
    print(
        f"  {len(changed)} changed: {edited['whole']:.0f} downloaded whole, "
        f"{edited['transformed']:.0f} transformed (target: exactly {len(changed)}), "
        f"{edited_speed_up:.1f}x faster than the first"
    )


if __name__ == "__main__":
    main()
