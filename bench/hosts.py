"""What a wedged image host costs a catalogue: the same good images alone, then beside a wedged host's.

`python -m bench hosts [--good N] [--wedged N]` (not in `make bench`: it waits out the fetch deadlines
of real wedged connections). The real stack (gunicorn, a Celery worker with its defaults, SQLite,
files) takes two catalogues in turn:

- baseline: ``--good`` JPEGs from a local host;
- with a wedged host: the same good images, each row followed by two from a host that accepts every
  connection and never answers (issue 11: 200 good and 400 wedged, done in under 2 minutes).

For each it prints the time to completion, what was done and failed (and why, the commonest reasons),
how many connections the wedged host accepted, and the slowest ``/healthz`` answer while it ran
(polled every 0.5 s, as a load balancer would).
"""

from __future__ import annotations

import argparse
import io
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench import workdir
from tests.support.hostile import Wedged
from tests.support.imageserver import ImageServer, serve_images
from tests.support.stack import Stack

TIMEOUT = 600  # seconds: a run this long has failed its purpose; it stops and says so


@dataclass
class Run:
    seconds: float
    good_seconds: float | None  # when the last good image was done
    done: int
    failed: int
    healthz_ms: float
    reasons: list[tuple[str, int]]
    completed: bool


def photo(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (seed % 256, 90, (seed * 5) % 256)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def catalogue(urls: list[str]) -> bytes:
    rows = "".join(f"{n},product {n},{url}\n" for n, url in enumerate(urls, start=1))
    return ("S. No.,Product Name,Input Image Urls\n" + rows).encode()


def run(root: Path, urls: list[str], good: int) -> Run:
    """One catalogue (``good`` of its images from the good host) through a fresh stack with the
    worker's defaults."""
    stack = Stack(root, {"FETCH_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32"})
    stack.migrate()
    stack.start_worker("bench", concurrency=None)
    stack.start_web()
    stack.wait_worker_ready("bench")
    try:
        started = time.perf_counter()
        code, accepted = stack.upload(catalogue(urls))
        if code != 202:
            raise SystemExit(f"the upload was refused: {accepted}")
        worst = 0.0
        good_seconds: float | None = None
        while True:
            asked = time.perf_counter()
            stack.http.request("GET", f"{stack.base_url}/healthz", timeout=10)
            worst = max(worst, time.perf_counter() - asked)
            status = stack.status(str(accepted["request_id"]))
            if good_seconds is None and status["progress"]["done"] >= good:
                good_seconds = time.perf_counter() - started
            if status["completed"] or time.perf_counter() - started > TIMEOUT:
                break
            time.sleep(0.5)
        reasons = Counter(str(error.get("message", ""))[:80] for error in status.get("errors", []))
        return Run(
            seconds=time.perf_counter() - started,
            good_seconds=good_seconds,
            done=status["progress"]["done"],
            failed=status["progress"]["failed"],
            healthz_ms=worst * 1000,
            reasons=reasons.most_common(3),
            completed=bool(status["completed"]),
        )
    finally:
        stack.stop()


def show(label: str, result: Run) -> None:
    end = "" if result.completed else f" (NOT complete after {TIMEOUT} s)"
    good = "never" if result.good_seconds is None else f"after {result.good_seconds:.1f} s"
    print(
        f"  {label}: {result.seconds:.1f} s{end}; {result.done} done ({good} all good ones), "
        f"{result.failed} failed; /healthz at most {result.healthz_ms:.0f} ms"
    )
    for reason, count in result.reasons:
        print(f"    {count} x {reason}")


def good_urls(server: ImageServer, count: int) -> list[str]:
    return [server.add(f"good-{n}.jpg", photo(n), "image/jpeg") for n in range(count)]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench hosts")
    parser.add_argument("--good", type=int, default=200)
    parser.add_argument("--wedged", type=int, default=400, help="images on the wedged host")
    args = parser.parse_args(argv)
    wedged = Wedged()
    try:
        with serve_images() as server, workdir.bench_dir("bench-hosts-") as folder:
            good = good_urls(server, args.good)
            print(f"{args.good} good 640x480 JPEGs from a local host; the worker's defaults:")
            alone = run(Path(folder, "alone"), good, len(good))
            show("alone", alone)
            bad = [wedged.url(f"wedged-{n}.jpg") for n in range(args.wedged)]
            per_good = max(1, -(-len(bad) // max(1, len(good))))  # the wedged rows spread among the good
            mixed: list[str] = []
            for n, url in enumerate(good):
                mixed += [url, *bad[n * per_good : (n + 1) * per_good]]
            mixed += bad[len(good) * per_good :]
            beside = run(Path(folder, "beside"), mixed, len(good))
            show(f"beside {args.wedged} on a wedged host", beside)
            print(
                f"  the wedged host accepted {wedged.accepted} connections; the catalogue took "
                f"{beside.seconds / alone.seconds:.1f}x as long as its good images alone "
                "(issue 11's target: all good ones done, the whole under 120 s)"
            )
    finally:
        wedged.close()
