"""The image host for `make bench`: the standard library's file server, speaking HTTP/1.1 (kept-alive
connections, as every real image host and CDN) and sending files with sendfile(2), as nginx does.

It shares the machine's cores with the service being measured, so its own cost is kept to what a
real host's would be: `python -m http.server` answers HTTP/1.0 (a new connection per image, so the
service's connection reuse is never exercised) and copies each file through Python, which together
took 0.9-1.0 ms of CPU per 1.2 MB image here, against 0.6 for HTTP/1.1 alone and 0.34 with sendfile.

`python -m bench.imagehost PORT DIRECTORY`
"""

from __future__ import annotations

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as nginx sets on kept-alive connections: with Nagle, a body's last partial segment
    # could wait for the client's delayed ACK, which a one-at-a-time loop pays on every image.
    disable_nagle_algorithm = True

    def copyfile(self, source: Any, outputfile: Any) -> None:  # the headers went out unbuffered
        self.connection.sendfile(source)  # `source` is the open file send_head() found

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: the service opening its 24 pooled connections at once had
    # SYNs dropped and retried a second later (fetches of 1,030 ms, cores idle). nginx's is 511.
    request_queue_size = 511


def main() -> None:
    port, directory = int(sys.argv[1]), sys.argv[2]
    server = Server(("127.0.0.1", port), functools.partial(Handler, directory=directory))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
