"""The fetcher against real servers on 127.0.0.1, one hostile behaviour each.

Forbidden listeners are real listening sockets (on 127.0.0.1 with no allowlist, or on 127.0.0.2 while
only 127.0.0.1/32 is allowed) that count every connection they accept: each refusal test asserts
they accepted none. Names other than literal addresses go through a fake ``getaddrinfo`` that answers
with 127.0.0.x only, so nothing here ever leaves the machine.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import http.server
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from catalog.fetch import Fetcher, FetchError, FetchLimits, fetcher_from_settings

ALLOW_LOCAL = ("127.0.0.1/32",)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


# --- servers ---------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}


Route = Callable[["Origin", socket.socket, Request], bool]  # returns whether to keep the connection


@dataclass
class Origin:
    """A tiny HTTP/1.1 server on raw sockets, so every byte and every pause is under the test's control."""

    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server((self.host, 0))
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str, host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            while not self.stop.is_set():
                line = reader.readline()
                if not line.strip():
                    return
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                request = Request(method, target, headers, body)
                with self._lock:
                    self.requests.append(request)
                route = self.routes.get(request.path, not_found)
                if not route(self, conn, request):
                    return
        except (OSError, ValueError):
            return
        finally:
            conn.close()


def respond(
    conn: socket.socket,
    status: int,
    body: bytes = b"",
    content_type: str | None = "image/png",
    headers: dict[str, str] | None = None,
) -> bool:
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return True


def not_found(origin: Origin, conn: socket.socket, request: Request) -> bool:
    return respond(conn, 404, b"not found", "text/plain")


def drip(origin: Origin, conn: socket.socket, data: bytes, every: float) -> bool:
    for i in range(len(data)):
        if origin.stop.wait(every):
            break
        try:
            conn.sendall(data[i : i + 1])
        except OSError:
            break
    return False


def head_then(origin: Origin, conn: socket.socket, header: bytes, body: bytes, every: float) -> bool:
    """A 200 image head with ``header``, then ``body``: a byte every ``every`` s, or at once if 0."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" + header + b"\r\n\r\n")
    if every:
        return drip(origin, conn, body, every)
    conn.sendall(body)
    origin.stop.wait(3)
    return False


def cut_short(origin: Origin, conn: socket.socket) -> bool:
    """Announces 1000 bytes, sends 400 and hangs up: a connection that broke mid-body."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n" + b"z" * 400)
    return False


def endless_chunks(origin: Origin, conn: socket.socket) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (16384, b"x" * 16384)
    try:
        for _ in range(10_000):  # 160 MB if nobody stops reading
            conn.sendall(chunk)
    except OSError:
        pass
    return False


def until_close(origin: Origin, conn: socket.socket) -> bool:
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\n\r\n")
    try:
        for _ in range(10_000):
            conn.sendall(b"y" * 16384)
    except OSError:
        pass
    return False


GZIP_BOMB = gzip.compress(b"\x00" * (50 * 1024 * 1024), compresslevel=9)

ROUTES: dict[str, Route] = {
    "/ok.png": lambda o, c, r: respond(c, 200, PNG),
    "/octet": lambda o, c, r: respond(c, 200, PNG, "application/octet-stream"),
    "/untyped": lambda o, c, r: respond(c, 200, PNG, None),
    "/jpeg-params": lambda o, c, r: respond(c, 200, PNG, "IMAGE/JPEG; charset=binary"),
    "/host": lambda o, c, r: respond(c, 200, r.headers["host"].encode(), "image/png"),
    "/echo": lambda o, c, r: respond(c, 200, r.body, "application/json"),
    "/status": lambda o, c, r: respond(c, int(r.query["code"]), b"{}", "application/json"),
    "/html": lambda o, c, r: respond(c, 200, b"<html>login</html>", "text/html; charset=utf-8"),
    "/json": lambda o, c, r: respond(c, 200, b"{}", "application/json"),
    "/to": lambda o, c, r: respond(
        c, int(r.query.get("code", "302")), b"", None, {"Location": r.query["url"]}
    ),
    "/no-location": lambda o, c, r: respond(c, 302, b"", None),
    "/chain": lambda o, c, r: (
        respond(c, 302, b"", None, {"Location": f"chain?n={int(r.query['n']) - 1}"})
        if int(r.query["n"]) > 0
        else respond(c, 200, PNG)
    ),
    "/huge-header": lambda o, c, r: head_then(o, c, b"Content-Length: 10000000", PNG, 0),
    "/chunked-forever": lambda o, c, r: endless_chunks(o, c),
    "/until-close": lambda o, c, r: until_close(o, c),
    "/gzip-bomb": lambda o, c, r: respond(c, 200, GZIP_BOMB, "image/png", {"Content-Encoding": "gzip"}),
    "/cut-short": lambda o, c, r: cut_short(o, c),
    "/drip-body": lambda o, c, r: head_then(o, c, b"Content-Length: 1000", b"z" * 1000, 0.25),
    "/drip-headers": lambda o, c, r: drip(o, c, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000, 0.25),
    "/drip-chunks": lambda o, c, r: head_then(o, c, b"Transfer-Encoding: chunked", b"1\r\nz\r\n" * 200, 0.1),
    "/stall": lambda o, c, r: o.stop.wait(3) and False,
    "/hang-up": lambda o, c, r: False,  # reads the request, closes without a word
    "/validated": lambda o, c, r: validated(c, r),
}


def validated(conn: socket.socket, request: Request) -> bool:
    """An image with validators: 304 to a request that names the current ones (ETag first, as RFC 9110)."""
    etag, modified = '"v1"', "Tue, 01 Sep 2026 10:00:00 GMT"
    if "if-none-match" in request.headers:
        unchanged = request.headers["if-none-match"] == etag
    else:
        unchanged = request.headers.get("if-modified-since") == modified
    if unchanged:
        lines = f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n"  # no body, no Content-Length
        conn.sendall(lines.encode())
        return True
    return respond(conn, 200, PNG, "image/png", {"ETag": etag, "Last-Modified": modified})


class Trap:
    """A listener that must never be contacted: counts every connection it accepts."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0), backlog=16)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self._peers: list[tuple[str, int]] = []  # who connected, in the order accepted
        self._probes: set[tuple[str, int]] = set()
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self._peers.append(peer[:2])
            conn.close()

    @property
    def accepted(self) -> int:
        """Connections that got through so far. The listener accepts in the order connections were
        made, so once it has accepted a probe of ours made now, it has accepted every earlier one."""
        with socket.create_connection((self.host, self.port), timeout=10) as probe:
            me = probe.getsockname()[:2]
        self._probes.add(me)
        deadline = time.monotonic() + 30
        while me not in self._peers:
            assert time.monotonic() < deadline, "the trap never accepted its own probe"
            time.sleep(0.01)
        return len([peer for peer in self._peers if peer not in self._probes])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    server = Origin(routes=dict(ROUTES))
    yield server
    server.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    """On 127.0.0.2: loopback, so forbidden while only 127.0.0.1/32 is allowed."""
    listener = Trap("127.0.0.2")
    yield listener
    listener.close()


@pytest.fixture
def loop_trap() -> Iterator[Trap]:
    """On 127.0.0.1: forbidden whenever the allowlist is empty."""
    listener = Trap("127.0.0.1")
    yield listener
    listener.close()


@pytest.fixture
def make_fetcher() -> Iterator[Callable[..., Fetcher]]:
    made: list[Fetcher] = []

    def make(allowed: tuple[str, ...] = ALLOW_LOCAL, ca_certs: str | None = None, **limits: Any) -> Fetcher:
        defaults: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}
        fetcher = Fetcher(FetchLimits(**{**defaults, **limits}), allowed, ca_certs=ca_certs)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


@dataclass
class FakeDNS:
    """Answers for chosen names (only 127.0.0.x); every other lookup goes to the real resolver."""

    answers: dict[str, list[str] | Exception | Callable[[], list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        dns.lookups.append(name)
        answer = dns.answers.get(name)
        if answer is None:
            return real(host, port, *args, **kwargs)
        if isinstance(answer, Exception):
            raise answer
        addresses = answer() if callable(answer) else answer
        result = []
        for address in addresses:
            assert address.startswith("127.0.0.") or address == "::1", "tests stay on this machine"
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            result.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


HINT = " (allow it with FETCH_ALLOWED_PRIVATE_NETWORKS)"


def refused(fetch: Callable[[], object]) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch()
    return info.value


# --- what works --------------------------------------------------------------------------------------


def test_image_200(
    origin: Origin, make_fetcher: Callable[..., Fetcher], caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = make_fetcher()
    with caplog.at_level(logging.INFO, logger="catalog.fetch"):
        response = fetcher.fetch_image(origin.url("/ok.png"))
    assert (response.status, response.body, response.url) == (200, PNG, origin.url("/ok.png"))
    assert response.headers["content-type"] == "image/png"  # case-insensitive headers
    (line,) = [r.getMessage() for r in caplog.records if r.name == "catalog.fetch"]
    assert "127.0.0.1" in line and ": 200," in line and f"{len(PNG)} bytes" in line and " ms" in line


@pytest.mark.parametrize("path", ["/octet", "/untyped", "/jpeg-params"])
def test_octet_stream_missing_and_parameterised_types_are_accepted(
    origin: Origin, make_fetcher: Callable[..., Fetcher], path: str
) -> None:
    assert make_fetcher().fetch_image(origin.url(path)).body == PNG


def test_host_header_names_the_host_with_its_port(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    assert make_fetcher().fetch_image(origin.url("/host")).body == f"127.0.0.1:{origin.port}".encode()


def test_relative_redirects_within_the_cap_are_followed(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    response = make_fetcher(max_redirects=3).fetch_image(origin.url("/chain?n=3"))
    assert response.body == PNG
    assert response.url == origin.url("/chain?n=0")


def test_connections_are_reused_and_shared_safely_between_threads(
    make_fetcher: Callable[..., Fetcher],
) -> None:
    server = Origin(routes=dict(ROUTES))
    try:
        fetcher = make_fetcher()
        for _ in range(5):
            fetcher.fetch_image(server.url("/ok.png"))
        assert server.connections == 1

        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    assert fetcher.fetch_image(server.url("/ok.png")).body == PNG
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(server.requests) == 85
        assert server.connections <= 1 + 8  # one per thread at most: the pool is reused, not churned
    finally:
        server.close()


def test_request_posts_and_returns_redirects_unfollowed(
    origin: Origin, make_fetcher: Callable[..., Fetcher], trap: Trap
) -> None:
    fetcher = make_fetcher()
    posted = fetcher.request("POST", origin.url("/echo"), body=b'{"a":1}', headers={"X-Sig": "v1"})
    assert (posted.status, posted.body) == (200, b'{"a":1}')
    assert origin.requests[-1].headers["x-sig"] == "v1"
    redirect = fetcher.request("POST", origin.url(f"/to?url=http://127.0.0.2:{trap.port}/"), body=b"{}")
    assert redirect.status == 302
    assert trap.accepted == 0
    assert fetcher.request("GET", origin.url("/status?code=503")).status == 503
    slow = refused(lambda: fetcher.request("GET", origin.url("/drip-body"), total_timeout=1.0))
    assert (str(slow), slow.retryable) == ("download from 127.0.0.1 took longer than 1 s", False)


def test_one_lookup_per_hop_and_the_checked_address_is_the_one_used(
    origin: Origin, make_fetcher: Callable[..., Fetcher], fake_dns: FakeDNS, trap: Trap
) -> None:
    """DNS rebinding: the name answers 127.0.0.1 once, then 127.0.0.2; only the first answer is used."""
    answers = iter([["127.0.0.1"]])
    fake_dns.answers["rebind.test"] = lambda: next(answers, ["127.0.0.2"])
    response = make_fetcher().fetch_image(origin.url("/host", host="rebind.test"))
    assert response.body == f"rebind.test:{origin.port}".encode()
    assert fake_dns.lookups.count("rebind.test") == 1
    assert trap.accepted == 0


def test_fetcher_from_settings(settings: Any) -> None:
    settings.FETCH_CONNECT_TIMEOUT = 1.5
    settings.FETCH_READ_TIMEOUT = 2.5
    settings.FETCH_TOTAL_TIMEOUT = 7.0
    settings.FETCH_MAX_BYTES = 1234
    settings.FETCH_MAX_REDIRECTS = 2
    settings.FETCH_ALLOWED_PRIVATE_NETWORKS = ("127.0.0.1/32",)
    fetcher = fetcher_from_settings()
    try:
        assert fetcher.limits.connect_timeout == 1.5
        assert fetcher.limits.read_timeout == 2.5
        assert fetcher.limits.total_timeout == 7.0
        assert fetcher.limits.max_bytes == 1234
        assert fetcher.limits.max_redirects == 2
        assert fetcher.allowed_private_networks == ("127.0.0.1/32",)
    finally:
        fetcher.close()


# --- HTTPS: SNI and certificate checked against the name, while connecting to the pinned address -------


def _certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "img.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("img.test")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


def test_https_sends_sni_and_verifies_the_certificate_against_the_name(
    tmp_path: Path, make_fetcher: Callable[..., Fetcher], fake_dns: FakeDNS
) -> None:
    ca_pem, cert_pem, key_pem = _certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_pem, key_pem)
    server = Origin(tls=context, routes=dict(ROUTES))

    def record_sni(sock: object, name: str | None, ctx: ssl.SSLContext) -> None:
        server.server_names.append(name)

    context.sni_callback = record_sni
    fake_dns.answers["img.test"] = ["127.0.0.1"]
    fake_dns.answers["other.test"] = ["127.0.0.1"]
    try:
        fetcher = make_fetcher(ca_certs=str(ca_pem))
        response = fetcher.fetch_image(server.url("/host", host="img.test"))
        assert response.body == f"img.test:{server.port}".encode()
        assert server.server_names == ["img.test"]

        # The same server under a name its certificate does not carry: refused, not retried.
        error = refused(lambda: fetcher.fetch_image(server.url("/ok.png", host="other.test")))
        assert str(error) == "TLS certificate of other.test could not be verified"
        assert not error.retryable
        # And a fetcher that does not trust the test CA refuses the right name too.
        error = refused(lambda: make_fetcher().fetch_image(server.url("/ok.png", host="img.test")))
        assert str(error) == "TLS certificate of img.test could not be verified"
        assert len(server.requests) == 1
    finally:
        server.close()


# --- hostile inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    name: str
    url: str  # {origin} {trap} {loop_trap} are filled in
    message: str  # the exact message, with the same placeholders
    retryable: bool = False
    allowed: tuple[str, ...] = ALLOW_LOCAL
    limits: dict[str, Any] = field(default_factory=dict)
    dns: dict[str, list[str]] = field(default_factory=dict)


ORIGIN = "http://127.0.0.1:{origin}"
TRAP2 = "http://127.0.0.2:{trap}/"

HOSTILE: list[Hostile] = [
    Hostile("404", ORIGIN + "/missing.png", "HTTP 404 from 127.0.0.1"),
    Hostile("410", ORIGIN + "/status?code=410", "HTTP 410 from 127.0.0.1"),
    Hostile("500 is retryable", ORIGIN + "/status?code=500", "HTTP 500 from 127.0.0.1", retryable=True),
    Hostile("503 is retryable", ORIGIN + "/status?code=503", "HTTP 503 from 127.0.0.1", retryable=True),
    Hostile("429 is retryable", ORIGIN + "/status?code=429", "HTTP 429 from 127.0.0.1", retryable=True),
    Hostile("204 is not an image", ORIGIN + "/status?code=204", "HTTP 204 from 127.0.0.1"),
    Hostile("302 without Location", ORIGIN + "/no-location", "HTTP 302 from 127.0.0.1"),
    Hostile(
        "redirect chain over the cap",
        ORIGIN + "/chain?n=10",
        "more than 3 redirects from 127.0.0.1",
        limits={"max_redirects": 3},
    ),
    Hostile(
        "no redirects allowed",
        ORIGIN + "/chain?n=1",
        "more than 0 redirects from 127.0.0.1",
        limits={"max_redirects": 0},
    ),
    Hostile(
        "redirect to 127.0.0.2",
        ORIGIN + "/to?url=" + TRAP2,
        "redirect from 127.0.0.1 refused: 127.0.0.2 is a loopback address" + HINT,
    ),
    Hostile(
        "307 redirect to 127.0.0.2",
        ORIGIN + "/to?code=307&url=" + TRAP2,
        "redirect from 127.0.0.1 refused: 127.0.0.2 is a loopback address" + HINT,
    ),
    Hostile(
        "redirect to [::1]",
        ORIGIN + "/to?url=http://[::1]:{trap}/",
        "redirect from 127.0.0.1 refused: ::1 is a loopback address" + HINT,
    ),
    Hostile(
        "redirect to [::ffff:127.0.0.2]",
        ORIGIN + "/to?url=http://[::ffff:127.0.0.2]:{trap}/",
        "redirect from 127.0.0.1 refused: "
        "::ffff:127.0.0.2 is an IPv4-mapped form of 127.0.0.2, a loopback address" + HINT,
    ),
    Hostile(
        "redirect to 0x7f000002",
        ORIGIN + "/to?url=http://0x7f000002:{trap}/",
        "redirect from 127.0.0.1 refused: 0x7f000002 means 127.0.0.2, which is a loopback address" + HINT,
    ),
    Hostile(
        "redirect to the metadata service",
        ORIGIN + "/to?url=http://169.254.169.254/latest/meta-data/",
        "redirect from 127.0.0.1 refused: 169.254.169.254 is the cloud metadata address",
    ),
    Hostile(
        "redirect to a name resolving to 127.0.0.2",
        ORIGIN + "/to?url=http://evil.test:{trap}/",
        "redirect from 127.0.0.1 refused: evil.test resolves to 127.0.0.2, a loopback address" + HINT,
        dns={"evil.test": ["127.0.0.2"]},
    ),
    Hostile(
        "redirect to file:",
        ORIGIN + "/to?url=file:///etc/passwd",
        "redirect from 127.0.0.1 refused: only http and https URLs can be fetched, "
        "not file: file:///etc/passwd",
    ),
    Hostile(
        "redirect to gopher:",
        ORIGIN + "/to?url=gopher://127.0.0.2:{trap}/_x",
        "redirect from 127.0.0.1 refused: only http and https URLs can be fetched, "
        "not gopher: gopher://127.0.0.2:{trap}/_x",
    ),
    Hostile(
        "2130706433 with no allowlist",
        "http://2130706433:{loop_trap}/",
        "2130706433 means 127.0.0.1, which is a loopback address" + HINT,
        allowed=(),
    ),
    Hostile(
        "0x7f000001 with no allowlist",
        "http://0x7f000001:{loop_trap}/",
        "0x7f000001 means 127.0.0.1, which is a loopback address" + HINT,
        allowed=(),
    ),
    Hostile(
        "0177.0.0.1 with no allowlist",
        "http://0177.0.0.1:{loop_trap}/",
        "0177.0.0.1 means 127.0.0.1, which is a loopback address" + HINT,
        allowed=(),
    ),
    Hostile(
        "127.1 with no allowlist",
        "http://127.1:{loop_trap}/",
        "127.1 means 127.0.0.1, which is a loopback address" + HINT,
        allowed=(),
    ),
    Hostile(
        "0x7f.1 with no allowlist",
        "http://0x7f.1:{loop_trap}/",
        "0x7f.1 means 127.0.0.1, which is a loopback address" + HINT,
        allowed=(),
    ),
    Hostile(
        "127.0.0.1 with no allowlist",
        "http://127.0.0.1:{loop_trap}/",
        "127.0.0.1 is a loopback address" + HINT,
        allowed=(),
    ),
    Hostile(
        "localhost with no allowlist",
        "http://localhost:{loop_trap}/",
        "localhost resolves to 127.0.0.1, a loopback address" + HINT,
        allowed=(),
        dns={"localhost": ["127.0.0.1"]},
    ),
    Hostile(
        "2130706434 (127.0.0.2) while 127.0.0.1/32 is allowed",
        "http://2130706434:{trap}/",
        "2130706434 means 127.0.0.2, which is a loopback address" + HINT,
    ),
    Hostile(
        "a name with an allowed and a forbidden address",
        "http://mixed.test:{loop_trap}/",
        "mixed.test resolves to 127.0.0.2, a loopback address" + HINT,
        dns={"mixed.test": ["127.0.0.1", "127.0.0.2"]},
    ),
    Hostile(
        "a 10.0.0.0/8 allowlist does not open loopback",
        "http://127.0.0.1:{loop_trap}/",
        "127.0.0.1 is a loopback address" + HINT,
        allowed=("10.0.0.0/8",),
    ),
    Hostile(
        "unresolvable .invalid host", "http://nothing.invalid/a.png", "could not resolve nothing.invalid"
    ),
    Hostile(
        "ftp scheme",
        "ftp://127.0.0.1:{origin}/a.png",
        "only http and https URLs can be fetched, not ftp: ftp://127.0.0.1:{origin}/a.png",
    ),
    Hostile("no host", "http:///a.png", "URL has no valid host: http:///a.png"),
    Hostile("bad port", "http://127.0.0.1:99999/a.png", "not a valid URL: http://127.0.0.1:99999/a.png"),
    Hostile("text/html", ORIGIN + "/html", "127.0.0.1 sent text/html, not an image"),
    Hostile("application/json", ORIGIN + "/json", "127.0.0.1 sent application/json, not an image"),
    Hostile(
        "too big by Content-Length",
        ORIGIN + "/huge-header",
        "download from 127.0.0.1 exceeded 64 KB limit (9.5 MB announced)",
        limits={"max_bytes": 65536},
    ),
    Hostile(
        "too big by counting, chunked",
        ORIGIN + "/chunked-forever",
        "download from 127.0.0.1 exceeded 64 KB limit",
        limits={"max_bytes": 65536},
    ),
    Hostile(
        "too big by counting, no length (read to close)",
        ORIGIN + "/until-close",
        "download from 127.0.0.1 exceeded 64 KB limit",
        limits={"max_bytes": 65536},
    ),
    Hostile(
        "gzip bomb, counted after decoding",
        ORIGIN + "/gzip-bomb",
        "download from 127.0.0.1 exceeded 1 MB limit",
        limits={"max_bytes": 1024 * 1024},
    ),
    Hostile(
        "body dripping a byte every 0.25 s",
        ORIGIN + "/drip-body",
        "download from 127.0.0.1 took longer than 2 s",
        retryable=False,  # the host answered: its body would outlast the deadline again
        limits={"read_timeout": 1.0, "total_timeout": 2.0},
    ),
    Hostile(
        "body shorter than its Content-Length (connection closed mid-body)",
        ORIGIN + "/cut-short",
        "connection to 127.0.0.1 broke after 400 bytes of 1000 bytes",
        retryable=True,
    ),
    Hostile(
        "connection closed before any answer",
        ORIGIN + "/hang-up",
        "127.0.0.1 closed the connection before its answer was complete",
        retryable=True,
    ),
    Hostile(
        "headers dripping a byte every 0.25 s",
        ORIGIN + "/drip-headers",
        "download from 127.0.0.1 took longer than 2 s",
        retryable=True,
        limits={"read_timeout": 1.0, "total_timeout": 2.0},
    ),
    Hostile(
        "chunk sizes dripping a byte every 0.1 s",
        ORIGIN + "/drip-chunks",
        "download from 127.0.0.1 took longer than 2 s",
        retryable=False,  # the host answered: its body would outlast the deadline again
        limits={"read_timeout": 1.0, "total_timeout": 2.0},
    ),
    Hostile(
        "no answer within the read timeout",
        ORIGIN + "/stall",
        "127.0.0.1 sent nothing for 0.5 s",
        retryable=True,
        limits={"read_timeout": 0.5},
    ),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile(  # noqa: PLR0917 - pytest fixtures
    case: Hostile,
    origin: Origin,
    trap: Trap,
    loop_trap: Trap,
    make_fetcher: Callable[..., Fetcher],
    fake_dns: FakeDNS,
) -> None:
    ports = {"origin": origin.port, "trap": trap.port, "loop_trap": loop_trap.port}
    fake_dns.answers.update(case.dns)
    fetcher = make_fetcher(allowed=case.allowed, **case.limits)
    started = time.monotonic()
    error = refused(lambda: fetcher.fetch_image(case.url.format(**ports)))
    elapsed = time.monotonic() - started
    assert str(error) == case.message.format(**ports)
    assert error.retryable is case.retryable
    assert trap.accepted == 0
    assert loop_trap.accepted == 0
    total = case.limits.get("total_timeout", 5.0)
    assert elapsed < total + 0.5, f"took {elapsed:.1f} s"
    if "took longer" in case.message:
        assert elapsed > total - 0.2


def test_hostile_table_size() -> None:
    assert len(HOSTILE) >= 40


def test_refused_connection_is_retryable(make_fetcher: Callable[..., Fetcher]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    error = refused(lambda: make_fetcher().fetch_image(f"http://127.0.0.1:{port}/a.png"))
    assert str(error) == "could not connect to 127.0.0.1: connection refused"
    assert error.retryable


def test_temporary_dns_failure_is_retryable_and_never_skips_the_check(
    make_fetcher: Callable[..., Fetcher], fake_dns: FakeDNS, loop_trap: Trap
) -> None:
    fake_dns.answers["flaky.test"] = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    error = refused(lambda: make_fetcher().fetch_image(f"http://flaky.test:{loop_trap.port}/"))
    assert (str(error), error.retryable) == ("could not resolve flaky.test", True)
    assert loop_trap.accepted == 0


def test_a_hanging_resolver_is_cut(make_fetcher: Callable[..., Fetcher], fake_dns: FakeDNS) -> None:
    def slow() -> list[str]:
        time.sleep(1.5)
        return ["127.0.0.1"]

    fake_dns.answers["slow.test"] = slow
    started = time.monotonic()
    error = refused(lambda: make_fetcher(connect_timeout=0.3).fetch_image("http://slow.test/"))
    assert time.monotonic() - started < 1.0
    assert (str(error), error.retryable) == ("could not resolve slow.test in 0.3 s", True)


def test_unresolvable_host_fails_fast(make_fetcher: Callable[..., Fetcher]) -> None:
    started = time.monotonic()
    refused(lambda: make_fetcher().fetch_image("http://img.example.invalid/a.png"))
    assert time.monotonic() - started < 1.0


def test_check_url(origin: Origin, make_fetcher: Callable[..., Fetcher], fake_dns: FakeDNS) -> None:
    fetcher = make_fetcher()
    fetcher.check_url(origin.url("/hook"))
    before = len(origin.requests)
    fake_dns.answers["hooks.test"] = ["127.0.0.2"]
    for url, message in [
        ("http://hooks.test/x", "hooks.test resolves to 127.0.0.2, a loopback address" + HINT),
        ("http://[::1]/x", "::1 is a loopback address" + HINT),
        ("http://0x7f000002/x", "0x7f000002 means 127.0.0.2, which is a loopback address" + HINT),
        (
            "javascript:alert(1)",
            "only http and https URLs can be fetched, not javascript: javascript:alert(1)",
        ),
        ("http://nothing.invalid/", "could not resolve nothing.invalid"),
    ]:
        assert str(refused(functools.partial(fetcher.check_url, url))) == message
    assert len(origin.requests) == before  # check_url never connects


def test_a_server_that_closes_after_each_response_is_read_to_the_end(
    tmp_path: Path, make_fetcher: Callable[..., Fetcher]
) -> None:
    """The standard library's file server speaks HTTP/1.0 and closes after every response."""
    (tmp_path / "a.png").write_bytes(PNG)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetcher = make_fetcher()
        for _ in range(3):  # and again: nothing of a closed connection is reused
            response = fetcher.fetch_image(f"http://127.0.0.1:{server.server_address[1]}/a.png")
            assert response.body == PNG
    finally:
        server.shutdown()
        server.server_close()


# --- conditional requests ------------------------------------------------------------------------------


def test_a_conditional_request_with_current_validators_gets_unchanged_and_no_body(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    fetcher = make_fetcher()
    connections = origin.connections  # the origin serves the whole module
    first = fetcher.fetch_image(origin.url("/validated"))
    assert (first.status, first.not_modified, first.body) == (200, False, PNG)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for validators in (
        {"etag": etag},
        {"last_modified": modified},
        {"etag": etag, "last_modified": modified},
    ):
        again = fetcher.fetch_image(
            origin.url("/validated"),
            etag=validators.get("etag", ""),
            last_modified=validators.get("last_modified", ""),
        )
        assert (again.status, again.not_modified, again.body) == (304, True, b"")
    assert origin.connections == connections + 1, "a 304 leaves the connection reusable"
    sent = origin.requests[-1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (etag, modified)


def test_a_conditional_request_with_old_validators_gets_the_image(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    response = make_fetcher().fetch_image(origin.url("/validated"), etag='"v0"')
    assert (response.status, response.not_modified, response.body) == (200, False, PNG)


def test_conditional_headers_follow_a_redirect_and_its_checks(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    via = origin.url(f"/to?url={origin.url('/validated')}")
    assert make_fetcher().fetch_image(via, etag='"v1"').not_modified
    forbidden = origin.url("/to?url=http://10.0.0.1/validated")
    assert "private" in str(refused(lambda: make_fetcher().fetch_image(forbidden, etag='"v1"')))


def test_a_304_to_a_request_that_was_not_conditional_is_an_error(
    origin: Origin, make_fetcher: Callable[..., Fetcher]
) -> None:
    assert "HTTP 304" in str(refused(lambda: make_fetcher().fetch_image(origin.url("/status?code=304"))))
