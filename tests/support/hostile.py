"""Image hosts that behave badly, as real servers on 127.0.0.1, each counting what it saw."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Wedged:
    """Accepts every connection and never answers: holds each one open, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    @property
    def accepted(self) -> int:
        return len(self.held)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def closed_port() -> int:
    """A port nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0  # seconds between the body's bytes (0: all at once)
    drip_head: bool = False  # the status line and headers dripped too


class Answering:
    """An HTTP/1.1 server whose every answer comes from ``answer(path)``. Records each request."""

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.requests: list[tuple[float, str]] = []  # (time.monotonic(), path)
        self.connections = 0
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                state.connections += 1

            def do_GET(self) -> None:
                state.requests.append((time.monotonic(), self.path))
                answer_ = answer(self.path)
                lines = [f"HTTP/1.1 {answer_.status} Whatever", f"Content-Length: {len(answer_.body)}"]
                lines += [f"{name}: {value}" for name, value in answer_.headers.items()]
                head = ("\r\n".join(lines) + "\r\n\r\n").encode()
                if not answer_.drip:
                    self.wfile.write(head + answer_.body)
                    return
                if not answer_.drip_head:
                    self.wfile.write(head)
                for data in ([head] if answer_.drip_head else []) + [answer_.body]:
                    for i in range(len(data)):
                        time.sleep(answer_.drip)
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the fetcher hanging up on a drip is what is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
