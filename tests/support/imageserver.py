"""A real HTTP server on 127.0.0.1 that serves test images and counts what it was asked for."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    delay: float = 0.0  # seconds before answering: a slow host, or a request long enough to watch
    gate: threading.Event | None = None  # when given, answers wait until the test opens it


@dataclass
class ImageServer:
    files: dict[str, Served] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
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
    ) -> str:
        self.files["/" + path.lstrip("/")] = Served(body, content_type, status, delay=delay, gate=gate)
        return self.url(path)


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
            self.send_response(served.status)
            self.send_header("Content-Type", served.content_type)
            self.send_header("Content-Length", str(len(served.body)))
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
