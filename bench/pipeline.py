"""End-to-end throughput of the service against the plain Pillow loop and a naive one-task loop.

`python -m bench pipeline [--images N] [--rows-big N]` (also run by `make bench`). Everything is measured
in one run on the same files, and reported as ratios: these machines are noisy.

- plain loop: the same transform (draft, resize to half, JPEG q50) over images already in memory,
  on every core (multiprocessing: the faster of a process per core and one more), with no HTTP,
  database or storage: the ceiling.
- plain loop with I/O: the same, but each process downloads from the local server and writes a file:
  the work the service must do, without its queue, database and bookkeeping.
- naive loop: what a single task that walks the CSV does: download, open, resize, save, one by one.
- service: the real thing (gunicorn, a Celery worker with its default pool of a process per core plus
  one, SQLite, files), a CSV through the API, polled for completion every 100 ms. The plain loop and
  the service run in turn ``--repeat`` times (3), and the median pair's ratio is reported.

Images come from a local HTTP/1.1 host on the same cores (bench/imagehost.py), so its CPU counts
against everything but the plain loop.

- far hosts: the service again, its images from a host that answers after ``--far`` seconds (300 ms
  and 1 s: origins across an ocean) at ``--far-bandwidth`` bytes/s per connection, against the plain
  loop measured beside it: how much of the host's latency the service hides.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import urllib3
from PIL import Image

from bench import workdir
from tests.support.stack import Stack, free_port


def photo_jpeg(seed: int, size: tuple[int, int]) -> bytes:
    """A photo-like JPEG (noise over gradients), different for each seed."""
    noise = Image.effect_noise(size, 40 + seed % 20).convert("L")
    gradient = Image.linear_gradient("L").resize(size).rotate(seed % 360)
    image = Image.merge("RGB", (gradient, noise, Image.blend(gradient, noise, 0.5)))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same picture, other bytes: a COM segment right after the start-of-image marker."""
    comment = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def plain_transform(data: bytes) -> int:
    """The minimal correct loop: decode at reduced size, resize to exactly half, encode at q50."""
    with Image.open(io.BytesIO(data)) as im:
        target = (max(1, round(im.width / 2)), max(1, round(im.height / 2)))
        im.draft("RGB", target)
        out = im.resize(target, Image.Resampling.LANCZOS) if im.size != target else im.copy()
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=50, optimize=True)  # the encoder settings the service uses
    return len(buf.getvalue())


def naive_transform(data: bytes) -> bytes:
    """What a first version does: full decode, resize, save."""
    with Image.open(io.BytesIO(data)) as im:
        out = im.resize((im.width // 2, im.height // 2))
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=50)
        return buf.getvalue()


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def measure_plain(images: list[bytes], processes: int) -> tuple[float, float]:
    """Images a second, and CPU ms an image of the processes."""
    os.sync()  # the previous phase's files are written back before this one is timed
    with Pool(processes) as pool:
        pool.map(plain_transform, images[:processes])  # warm the workers
        pids = [worker.pid for worker in pool._pool if worker.pid is not None]  # type: ignore[attr-defined]
        cpu_before = sum(map(cpu_seconds, pids))
        started = time.perf_counter()
        pool.map(plain_transform, images, chunksize=4)
        elapsed = time.perf_counter() - started
        cpu_ms = (sum(map(cpu_seconds, pids)) - cpu_before) * 1000 / len(images)
        return rate(len(images), elapsed), cpu_ms


def measure_best_plain(images: list[bytes], cores: int) -> tuple[float, int, float]:
    """The faster of a process per core and one more (what the service runs): its rate, its process
    count and its CPU ms an image."""
    fastest, cpu_ms, processes = max((*measure_plain(images, n), n) for n in (cores, cores + 1))
    return fastest, processes, cpu_ms


_http: urllib3.PoolManager | None = None


def _fetch_transform_save(job: tuple[str, str]) -> int:
    """One image the plain way, with the I/O the service has: download, transform, write a file."""
    global _http  # noqa: PLW0603 - one connection pool per Pool process
    if _http is None:
        _http = urllib3.PoolManager()
    url, out = job
    body = _http.request("GET", url).data
    with Image.open(io.BytesIO(body)) as im:
        target = (max(1, round(im.width / 2)), max(1, round(im.height / 2)))
        im.draft("RGB", target)
        small = im.resize(target, Image.Resampling.LANCZOS) if im.size != target else im.copy()
    small.save(out, "JPEG", quality=50, optimize=True)
    return len(body)


def measure_plain_with_io(urls: list[str], out_dir: Path, processes: int) -> float:
    os.sync()  # the previous phase's files are written back before this one is timed
    jobs = [(url, str(out_dir / f"{n}.jpg")) for n, url in enumerate(urls)]
    with Pool(processes) as pool:
        pool.map(_fetch_transform_save, jobs[:processes])  # warm the workers
        started = time.perf_counter()
        pool.map(_fetch_transform_save, jobs, chunksize=4)
        return rate(len(urls), time.perf_counter() - started)


def measure_naive(urls: list[str], out_dir: Path) -> float:
    os.sync()  # the previous phase's files are written back before this one is timed
    http = urllib3.PoolManager()
    started = time.perf_counter()
    for n, url in enumerate(urls):
        body = http.request("GET", url).data
        (out_dir / f"{n}.jpg").write_bytes(naive_transform(body))
    return rate(len(urls), time.perf_counter() - started)


def csv_for(urls: list[str], per_row: int = 4) -> bytes:
    lines = ["S. No.,Product Name,Input Image Urls"]
    for row, start in enumerate(range(0, len(urls), per_row), start=1):
        lines.append(f'{row},SKU{row},"{",".join(urls[start : start + per_row])}"')
    return ("\n".join(lines) + "\n").encode()


def peak_rss_mb(pids: list[int]) -> float:
    """Sum of the peak resident memory (VmHWM) of the given processes and their children."""
    total_kb = 0
    for pid in pids:
        for proc in [pid, *_descendants(pid)]:
            try:
                status = Path(f"/proc/{proc}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(c) for c in children]
    for child in list(found):
        found.extend(_descendants(child))
    return found


def cpu_breakdown(service: dict[str, float]) -> str:
    """Where the service's CPU went, in ms an image, beside the plain loop's, and how busy it kept
    the cores (a service that waits on its hosts keeps them less busy; one that costs more an image
    keeps them busy and is still slower)."""
    parts = [f"{k.removeprefix('cpu_ms ')} {v:.1f}" for k, v in service.items() if k.startswith("cpu_ms ")]
    total = sum(v for k, v in service.items() if k.startswith("cpu_ms "))
    busy, plain = total * service["rate"] / 1000, service["plain_cpu_ms"]
    return (
        f"CPU ms an image: service {total:.1f} ({', '.join(parts)}); plain loop {plain:.1f}; "
        f"the service kept {busy:.2f} of {os.cpu_count() or 1} cores busy"
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, every thread, and reaped children) of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def cpu_by_role(stack: Stack, host_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of each kind of process: the web, the worker's main process, its children
    (pool processes and beat), and the image host."""
    roles: dict[str, float] = {}
    for name, proc in stack.processes.items():
        main = "web" if name == "web" else "worker main"
        roles[main] = roles.get(main, 0.0) + cpu_seconds(proc.pid)
        children = "web" if name == "web" else "worker pool"
        for child in _descendants(proc.pid):
            roles[children] = roles.get(children, 0.0) + cpu_seconds(child)
    if host_pid is not None:
        roles["image host"] = cpu_seconds(host_pid)
    return roles


def wait_complete(stack: Stack, request_id: str, timeout: float, poll: float = 0.1) -> None:
    """Until the request is complete, polled every ``poll`` s (the figure is then within a poll of the
    truth) on what the pages poll: one query for its progress. The API's status lists up to 1,000
    images done with their URLs: polled 10 times a second, the web took 1.0 ms of the cores an image
    (0.3 ms this way), which a client polling every second or two does not cost.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = stack.http.request("GET", f"{stack.base_url}/requests/progress/", fields={"ids": request_id})
        assert resp.status == 200, resp.data
        if json.loads(resp.data)[request_id]["completed"]:
            return
        time.sleep(poll)
    raise AssertionError(f"request {request_id} not complete after {timeout}s\n{stack.logs()}")


def measure_service(
    root: Path, urls: list[str], extra: dict[str, str] | None = None, host_pid: int | None = None
) -> dict[str, float]:
    os.sync()  # the previous phase's files are written back before this one is timed
    settings = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("BENCH_", "IMAGE_", "FETCH_", "CELERY_", "BROKER_", "LOG_", "MALLOC_", "GLIBC_"))
    }
    # As deployed (log lines at INFO, one per download and per image), but for the reconciler's
    # period, which the test harness shortens.
    deployed = {"RECONCILE_INTERVAL_SECONDS": "30", "LOG_LEVEL": "INFO"}
    env = {"FETCH_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32", **deployed, **(extra or {}), **settings}
    stack = Stack(root, env)
    stack.migrate()
    stack.start_worker("bench", concurrency=None)  # the deployed default: a process per core, plus one
    stack.start_web()
    stack.wait_worker_ready("bench")  # a deployed worker is up before uploads come: its start-up is not timed
    try:
        body = csv_for(urls)
        cpu_before = cpu_by_role(stack, host_pid)
        started = time.perf_counter()
        code, accepted = stack.upload(body)
        upload_seconds = time.perf_counter() - started
        assert code == 202, accepted
        wait_complete(stack, accepted["request_id"], timeout=600)
        elapsed = time.perf_counter() - started
        status = stack.status(accepted["request_id"])
        assert status["progress"]["done"] == len(urls), status["errors"][:3]
        cpu_after = cpu_by_role(stack, host_pid)
        cpu_ms = {k: (v - cpu_before.get(k, 0.0)) * 1000 / len(urls) for k, v in cpu_after.items()}
        return {
            **{f"cpu_ms {k}": v for k, v in cpu_ms.items()},
            "rate": rate(len(urls), elapsed),
            "upload_ms": upload_seconds * 1000,
            "peak_mb": peak_rss_mb([p.pid for p in stack.processes.values()]),
        }
    finally:
        stack.stop()


Pair = tuple[float, float, int, dict[str, float]]  # ratio, plain loop rate, its processes, service
# (the service's figures include "plain_cpu_ms": the CPU an image of the plain loop run beside it)


def measure_pairs(
    images: list[bytes],
    urls: list[str],
    root: Path,
    cores: int,
    repeat: int,
    *,
    extra: dict[str, str] | None = None,
    host_pid: int | None = None,
) -> tuple[list[float], Pair]:
    """The plain loop and the service in turn, ``repeat`` times: every ratio, and the median pair.

    One pair's ratio moved by +-0.04 between runs on this machine, so one pair alone says little.
    """
    pairs: list[Pair] = []
    for n in range(repeat):
        plain, processes, plain_cpu_ms = measure_best_plain(images, cores)
        service = measure_service(root / f"service-{n}", urls, extra, host_pid)
        service["plain_cpu_ms"] = plain_cpu_ms
        pairs.append((service["rate"] / plain, plain, processes, service))
    pairs.sort(key=lambda pair: pair[0])
    return [pair[0] for pair in pairs], pairs[len(pairs) // 2]


def start_host(served: Path, ttfb: float = 0.0, bandwidth: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    server = subprocess.Popen(  # on loopback, keeping connections alive (see bench/imagehost.py)
        [
            sys.executable,
            "-m",
            "bench.imagehost",
            str(port),
            str(served),
            f"--ttfb={ttfb}",
            f"--bandwidth={bandwidth}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:  # until it accepts connections
        try:
            urllib3.PoolManager(retries=False).request("HEAD", f"http://127.0.0.1:{port}/", timeout=ttfb + 5)
            return server, port
        except urllib3.exceptions.HTTPError:
            if time.monotonic() > deadline:
                server.terminate()
                raise
            time.sleep(0.1)


# The settings that shape how many downloads are in flight, as the run used them (the defaults unless
# the environment names one).
IN_FLIGHT_SETTINGS = (
    "IMAGE_BATCH_SIZE",
    "IMAGE_DOWNLOADS",
    "IMAGE_DOWNLOAD_WINDOW",
    "IMAGE_BATCHES_PER_PROCESS",
    "FETCH_HOST_CONNECTIONS",
)
DEFAULT = "default"


def measure_far(images: list[bytes], served: Path, root: Path, cores: int, args: argparse.Namespace) -> None:
    for ttfb in (float(v) for v in args.far.split(",") if v):
        server, port = start_host(served, ttfb, args.far_bandwidth)
        try:
            urls = [f"http://127.0.0.1:{port}/{n}.jpg" for n in range(len(images))]
            ratios, (ratio, plain, _, service) = measure_pairs(
                images, urls, root / f"far-{ttfb:g}", cores, args.far_repeat, host_pid=server.pid
            )
        finally:
            server.terminate()
            server.wait()
        target = 0.8 if ttfb <= 0.3 else 0.7
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"  far host, {ttfb * 1000:.0f} ms to first byte, {args.far_bandwidth / 1e6:g} MB/s each: "
            f"{service['rate']:.1f} img/s, {ratio:.2f} of the plain loop ({plain:.1f} img/s; pairs {each}) "
            f"(target >= {target}); peak memory of all service processes {service['peak_mb']:.0f} MB; "
            f"{' '.join(f'{k}={os.environ.get(k, DEFAULT)}' for k in IN_FLIGHT_SETTINGS)}"
        )
        print(f"    {cpu_breakdown(service)}")


def measure_big_upload(
    root: Path, rows: int, url: str, backend: dict[str, str] | None = None
) -> dict[str, float]:
    """Upload latency, status latency and web memory for a large CSV (no worker: accepting only)."""
    os.sync()  # the previous phase's files are written back before this one is timed
    stack = Stack(root, {"LOG_LEVEL": "INFO", **(backend or {})})
    stack.migrate()
    stack.start_web()
    try:
        lines = ["S. No.,Product Name,Input Image Urls"]
        lines += [f"{n},SKU{n},{url}?{n}" for n in range(1, rows + 1)]
        body = ("\n".join(lines) + "\n").encode()
        started = time.perf_counter()
        code, accepted = stack.upload(body)
        upload_seconds = time.perf_counter() - started
        assert code == 202, accepted
        polls = []
        for _ in range(20):
            poll_started = time.perf_counter()
            stack.status(accepted["request_id"])
            polls.append(time.perf_counter() - poll_started)
        return {
            "upload_ms": upload_seconds * 1000,
            "status_ms": sorted(polls)[len(polls) // 2] * 1000,
            "peak_mb": peak_rss_mb([p.pid for p in stack.processes.values()]),
            "csv_mb": len(body) / 1e6,
        }
    finally:
        stack.stop()


def measure_local(
    images: list[bytes], served: Path, root: Path, cores: int, args: argparse.Namespace
) -> None:
    """The service against its images on a host on this machine, and the other loops beside it."""
    server, port = start_host(served)
    try:
        urls = [f"http://127.0.0.1:{port}/{n}.jpg" for n in range(args.images)]
        ratios, (ratio, plain, processes, service) = measure_pairs(
            images, urls, root, cores, args.repeat, host_pid=server.pid
        )
        tried = f"best of {cores} and {cores + 1}"
        print(f"  plain Pillow loop, {processes} processes: {plain:8.1f} img/s  ({tried})")
        naive_out = root / "naive"
        naive_out.mkdir()
        # 100 images or more, so one hiccup cannot halve it.
        naive = measure_naive(urls[: max(cores * 50, 100)], naive_out)
        print(f"  naive one-task loop:             {naive:8.1f} img/s")
        plain_out = root / "plain"
        plain_out.mkdir()
        plain_io = measure_plain_with_io(urls, plain_out, processes)
        print(f"  same, downloading and saving:    {plain_io:8.1f} img/s")
        print(f"  service end to end:              {service['rate']:8.1f} img/s")
        print(f"  ratio service / plain loop:      {ratio:8.2f}   (target >= 0.85)")
        if len(ratios) > 1:
            each = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"    median of {len(ratios)} plain/service pairs run in turn: {each}")
        print(f"  ratio service / naive loop:      {service['rate'] / naive:8.2f}   (target >= 3)")
        print(f"  ratio service / plain with I/O:  {service['rate'] / plain_io:8.2f}   (its own cost)")
        print(
            f"  {args.images} images: upload answered in {service['upload_ms']:.0f} ms; "
            f"peak memory of all service processes {service['peak_mb']:.0f} MB"
        )
        print(f"  {cpu_breakdown(service)}")
        for rows in (1000, args.rows_big):
            big = measure_big_upload(root / f"big-{rows}", rows, urls[0])
            print(
                f"  {rows} rows ({big['csv_mb']:.1f} MB CSV): upload answered in "
                f"{big['upload_ms']:.0f} ms, status poll {big['status_ms']:.1f} ms, "
                f"web peak memory {big['peak_mb']:.0f} MB"
            )
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", default="1600x1200", help="input image size, WxH")
    parser.add_argument("--rows-big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="plain loop and service pairs (median)")
    parser.add_argument("--far", default="0.3,1", help="far hosts' seconds to first byte, comma-separated")
    parser.add_argument("--far-bandwidth", type=int, default=8_000_000, help="bytes/s a connection")
    parser.add_argument("--far-repeat", type=int, default=1, help="pairs for each far host (median)")
    parser.add_argument("--only-far", action="store_true", help="only the far-host cases")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    width, height = (int(v) for v in args.size.split("x"))

    with workdir.bench_dir("bench-") as tmp:
        root = Path(tmp)
        served = root / "served"
        served.mkdir()
        distinct = 50  # distinct pictures, each image its own bytes (a comment): every one is processed,
        # none reused as identical to another (see the README's "Re-runs")
        pictures = [photo_jpeg(seed, (width, height)) for seed in range(distinct)]
        images = [with_comment(pictures[n % distinct], f"image {n}") for n in range(args.images)]
        for n, data in enumerate(images):
            (served / f"{n}.jpg").write_bytes(data)
        megabytes = sum(map(len, images)) / 1e6
        print(f"{args.images} JPEGs of {width}x{height} ({megabytes:.0f} MB), {cores} cores")
        print(f"  {workdir.describe()}")
        if args.only_far:
            measure_far(images, served, root, cores, args)
            return
        measure_local(images, served, root, cores, args)
        measure_far(images, served, root, cores, args)
    print(f"(bench process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
