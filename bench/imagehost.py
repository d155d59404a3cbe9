"""The image host for the benches: static files over HTTP/1.1 (kept-alive connections, as every real
image host and CDN), each body sent with sendfile(2), as nginx does.

It shares the machine's cores with the service being measured, so its own cost is kept near what a
real host's is: none of the service's cores. `python -m http.server` answers HTTP/1.0 (a new connection
per image, so the service's connection reuse is never exercised) and copies each file through Python,
which together took 0.9-1.0 ms of CPU per 1.2 MB image here; the standard library's handler made to
speak HTTP/1.1 and send with sendfile still took 0.45-0.75 ms an image (its header parsing through
the email package, its per-request objects and logging), and a quarter of a re-run's CPU went to its
304 answers. This one reads a request's head with one receive, answers from a stat of the file, and
took 0.1-0.2 ms an image (30 November 2026): a host that answers what the service asks, and no more.

Like nginx, it sends validators (an ``ETag`` of the file's mtime and size, and ``Last-Modified``) and
answers ``304`` to a request that names the current ones (``If-None-Match`` decides over
``If-Modified-Since``); ``GET /__stats`` says how many answers of each status it sent (so the re-run
bench can count what was downloaded whole).

A far host is simulated per connection: ``--ttfb`` seconds before each answer (an origin across an
ocean, not a CDN edge), and ``--bandwidth`` bytes per second for each body (0: as fast as loopback).

`python -m bench.imagehost PORT DIRECTORY [--ttfb SECONDS] [--bandwidth BYTES_PER_SECOND]`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

ANSWERS: Counter[int] = Counter()  # status -> count, over every connection's thread
_ANSWERS_LOCK = threading.Lock()
_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_HEAD_LIMIT = 64 * 1024  # a request head longer than this is refused


@dataclass(frozen=True)
class Host:
    directory: Path
    ttfb: float = 0.0  # seconds before each answer
    bandwidth: int = 0  # bytes per second for each body; 0: unlimited

    def serve(self, conn: socket.socket) -> None:
        """One connection's requests, in turn, until the client closes it or asks to."""
        # TCP_NODELAY, as nginx sets on kept-alive connections: with Nagle, a body's last partial
        # segment could wait for the client's delayed ACK, which a one-at-a-time loop pays on every image.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in pending:
                    chunk = conn.recv(_HEAD_LIMIT)
                    if not chunk or len(pending) > _HEAD_LIMIT:
                        return
                    pending += chunk
                head, pending = pending.split(b"\r\n\r\n", 1)  # GET and HEAD have no body
                if not self.answer(conn, head):
                    return

    def answer(self, conn: socket.socket, head: bytes) -> bool:
        """Answer one request; whether the connection stays open."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self.send_head(conn, 400, {"Content-Length": "0", "Connection": "close"})
            return False
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        if self.ttfb:  # a far host is as far for a 304 as for a whole answer
            time.sleep(self.ttfb)
        if method not in ("GET", "HEAD"):
            self.send_head(conn, 405, {"Content-Length": "0", "Allow": "GET, HEAD"})
            return keep
        path = target.split("?", 1)[0]
        if path == "/__stats":
            with _ANSWERS_LOCK:
                body = json.dumps({str(k): v for k, v in ANSWERS.items()}).encode()
            fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            self.send_head(conn, 200, fields, counted=False)
            if method == "GET":
                conn.sendall(body)
            return keep
        return self.send_file(conn, method, path, headers, keep)

    def send_file(
        self, conn: socket.socket, method: str, path: str, headers: dict[str, str], keep: bool
    ) -> bool:
        name = path.lstrip("/")
        file = self.directory / name
        if not name or ".." in Path(name).parts or not file.is_file():
            self.send_head(conn, 404, {"Content-Length": "0"})
            return keep
        stat = file.stat()
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        validators = {"ETag": etag, "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}
        if _not_modified(headers, etag, stat.st_mtime):
            self.send_head(conn, 304, validators)
            return keep
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        fields = {"Content-Type": content_type, "Content-Length": str(stat.st_size), **validators}
        self.send_head(conn, 200, fields)
        if method == "HEAD":
            return keep
        with file.open("rb") as body:
            self.send_body(conn, body.fileno(), stat.st_size)
        return keep

    def send_body(self, conn: socket.socket, fd: int, size: int) -> None:
        if not self.bandwidth:
            _sendfile(conn, fd, 0, size)
            return
        # 20 paced sends a second, each by sendfile(2): copied through Python, a far host's bodies
        # cost 1.1-1.7 ms of the service's cores an image, which a real far host does not.
        step = max(1, self.bandwidth // 20)
        started = time.monotonic()
        for offset in range(0, size, step):
            _sendfile(conn, fd, offset, min(step, size - offset))
            ahead = started + (offset + step) / self.bandwidth - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    @staticmethod
    def send_head(conn: socket.socket, status: int, fields: dict[str, str], *, counted: bool = True) -> None:
        if counted:
            with _ANSWERS_LOCK:
                ANSWERS[status] += 1
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}", f"Date: {formatdate(usegmt=True)}"]
        lines += [f"{name}: {value}" for name, value in fields.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def _not_modified(headers: dict[str, str], etag: str, mtime: float) -> bool:
    """As nginx: If-None-Match decides when present; else If-Modified-Since, to the second."""
    wanted = headers.get("if-none-match")
    if wanted is not None:
        return etag in [tag.strip() for tag in wanted.split(",")]
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return int(mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


def _sendfile(conn: socket.socket, fd: int, offset: int, count: int) -> None:
    while count > 0:
        sent = os.sendfile(conn.fileno(), fd, offset, count)
        if sent == 0:
            raise ConnectionError("the client closed the connection")
        offset += sent
        count -= sent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imagehost")
    parser.add_argument("port", type=int)
    parser.add_argument("directory")
    parser.add_argument("--ttfb", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--bandwidth", type=int, default=0, help="bytes/s per body (0: unlimited)")
    args = parser.parse_args()
    host = Host(Path(args.directory), args.ttfb, args.bandwidth)
    listener = socket.create_server(("127.0.0.1", args.port), backlog=511)
    # A backlog of 511, as nginx's: socketserver's 5 had the service's SYNs dropped when it opened its
    # pooled connections at once, and retried a second later (fetches of 1,030 ms, cores idle).
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_quietly, args=(host, conn), daemon=True).start()


def _serve_quietly(host: Host, conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the client went away mid-answer: its next request comes anew
        host.serve(conn)


if __name__ == "__main__":
    main()
