"""A real HTTP server on 127.0.0.1 that serves test images and counts what it was asked for.

Files added with ``validators=True`` are served as a real host (and a CDN) serves them: with an
``ETag`` (of the body) and a ``Last-Modified`` (when added), answering ``304`` to a request that
names the current ones. ``answers`` counts each path's statuses: a 200 is a body sent whole.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    delay: float = 0.0  # seconds before answering: a slow host, or a request long enough to watch
    gate: threading.Event | None = None  # when given, answers wait until the test opens it
    validators: bool = False
    last_modified: str = field(default_factory=lambda: formatdate(time.time(), usegmt=True))

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.body).hexdigest()[:20]}"'

    def unchanged_for(self, headers: Message) -> bool:
        """RFC 9110: If-None-Match decides when present; else If-Modified-Since."""
        if not self.validators or self.status != 200:
            return False
        if headers.get("If-None-Match") is not None:
            return self.etag in [tag.strip() for tag in headers["If-None-Match"].split(",")]
        return headers.get("If-Modified-Since") == self.last_modified


@dataclass
class ImageServer:
    files: dict[str, Served] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (path, status)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        status: int = 200,
        *,
        delay: float = 0.0,
        gate: threading.Event | None = None,
        validators: bool = False,
    ) -> str:
        served = Served(body, content_type, status, delay=delay, gate=gate, validators=validators)
        if validators and (before := self.files.get("/" + path.lstrip("/"))) and before.body != body:
            # A changed file is newer (HTTP dates have whole seconds: without this, a change within
            # the second would look unchanged to If-Modified-Since).
            served.last_modified = formatdate(time.time() + 2, usegmt=True)
        self.files["/" + path.lstrip("/")] = served
        return self.url(path)

    def downloads(self, path: str) -> int:
        """How many times the path's body went out whole."""
        return self.answers[("/" + path.lstrip("/"), 200)]


@contextmanager
def serve_images() -> Iterator[ImageServer]:
    state = ImageServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK wait

        def do_GET(self) -> None:
            state.hits[self.path] += 1
            served = state.files.get(self.path, Served(b"not found", "text/plain", 404))
            time.sleep(served.delay)
            if served.gate is not None:
                served.gate.wait(timeout=60)
            if served.unchanged_for(self.headers):
                state.answers[(self.path, 304)] += 1
                self.send_response(304)
                self.send_header("ETag", served.etag)
                self.end_headers()
                return
            state.answers[(self.path, served.status)] += 1
            self.send_response(served.status)
            self.send_header("Content-Type", served.content_type)
            self.send_header("Content-Length", str(len(served.body)))
            if served.validators:
                self.send_header("ETag", served.etag)
                self.send_header("Last-Modified", served.last_modified)
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 511  # socketserver's 5 drops the SYNs of a worker's pool opening at once

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client hanging up mid-answer (a browser leaving a page) is not news

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
