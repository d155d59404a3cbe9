"""The image host for `make bench`: the standard library's file server, speaking HTTP/1.1 (kept-alive
connections, as every real image host and CDN) and sending files with sendfile(2), as nginx does.

It shares the machine's cores with the service being measured, so its own cost is kept to what a
real host's would be: `python -m http.server` answers HTTP/1.0 (a new connection per image, so the
service's connection reuse is never exercised) and copies each file through Python, which together
took 0.9-1.0 ms of CPU per 1.2 MB image here, against 0.6 for HTTP/1.1 alone and 0.34 with sendfile.

Like nginx, it sends validators (an ``ETag`` of the file's mtime and size, and ``Last-Modified``) and
answers ``304`` to a request that names the current ones; ``GET /__stats`` says how many answers of
each status it sent (so the re-run bench can count what was downloaded whole).

A far host is simulated per connection: ``--ttfb`` seconds before each answer (an origin across an
ocean, not a CDN edge), and ``--bandwidth`` bytes per second for each body (0: as fast as loopback).

`python -m bench.imagehost PORT DIRECTORY [--ttfb SECONDS] [--bandwidth BYTES_PER_SECOND]`
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import threading
import time
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWERS: Counter[int] = Counter()  # status -> count, over every handler thread
_ANSWERS_LOCK = threading.Lock()


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as nginx sets on kept-alive connections: with Nagle, a body's last partial segment
    # could wait for the client's delayed ACK, which a one-at-a-time loop pays on every image.
    disable_nagle_algorithm = True
    ttfb = 0.0  # seconds before each answer
    bandwidth = 0  # bytes per second for each body; 0: unlimited
    etag = ""

    def copyfile(self, source: Any, outputfile: Any) -> None:  # the headers went out unbuffered
        if not self.bandwidth:
            self.connection.sendfile(source)  # `source` is the open file send_head() found
            return
        # 20 paced sends a second, each by sendfile(2): copied through Python, a far host's bodies
        # cost 1.1-1.7 ms of the service's cores an image, which a real far host does not.
        size, step = os.fstat(source.fileno()).st_size, max(1, self.bandwidth // 20)
        started = time.monotonic()
        for offset in range(0, size, step):
            self.connection.sendfile(source, offset, min(step, size - offset))
            ahead = started + (offset + step) / self.bandwidth - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def do_GET(self) -> None:
        self.etag = ""  # one handler serves a kept-alive connection's requests in turn
        if self.path == "/__stats":
            with _ANSWERS_LOCK:
                body = json.dumps({str(k): v for k, v in ANSWERS.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def send_head(self) -> Any:
        """The standard library's, with an ETag, and If-None-Match deciding over If-Modified-Since."""
        if self.ttfb:  # a far host is as far for a 304 as for a whole answer
            time.sleep(self.ttfb)
        try:
            stat = os.stat(self.translate_path(self.path))
        except OSError:
            return super().send_head()
        self.etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        wanted = self.headers.get("If-None-Match")
        if wanted is not None and self.etag in [tag.strip() for tag in wanted.split(",")]:
            self.send_response(304)
            self.end_headers()
            return None
        return super().send_head()  # which also answers If-Modified-Since when If-None-Match is absent

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.path != "/__stats":
            with _ANSWERS_LOCK:
                ANSWERS[code] += 1
        super().send_response(code, message)

    def end_headers(self) -> None:
        if self.etag:
            self.send_header("ETag", self.etag)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: the service opening its 24 pooled connections at once had
    # SYNs dropped and retried a second later (fetches of 1,030 ms, cores idle). nginx's is 511.
    request_queue_size = 511


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imagehost")
    parser.add_argument("port", type=int)
    parser.add_argument("directory")
    parser.add_argument("--ttfb", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--bandwidth", type=int, default=0, help="bytes/s per body (0: unlimited)")
    args = parser.parse_args()
    handler = type("FarHandler", (Handler,), {"ttfb": args.ttfb, "bandwidth": args.bandwidth})
    server = Server(("127.0.0.1", args.port), functools.partial(handler, directory=args.directory))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
