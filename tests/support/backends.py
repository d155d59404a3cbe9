"""The real servers of the scale-out path here: found, started if down, or skipped with a reason."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# How this machine's services are started (see the env notes); used only when one is down.
START_COMMANDS = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "rabbitmq": "rabbitmq-server -detached",
}
PORTS = {"postgresql": 5432, "rabbitmq": 5672}


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def ensure_up(service: str, wait: float = 60) -> None:
    port = PORTS[service]
    if _listening(port):
        return
    subprocess.run(START_COMMANDS[service], shell=True, capture_output=True, timeout=120, check=False)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _listening(port):
            time.sleep(1 if service == "rabbitmq" else 0)  # the AMQP listener opens before boot finishes
            return
        time.sleep(0.5)
    pytest.skip(f"{service} is not reachable on 127.0.0.1:{port} and could not be started here")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database; dropped afterwards."""
    ensure_up("postgresql")
    import psycopg

    name = f"catalogue_test_{secrets.token_hex(4)}"
    admin_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class RedisServer:
    """A Redis of this test run's own, on a free port. The machine's shared one (6379) may be flushed
    or restarted by another run of the suite at the same time, which lost this run's messages."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, wait: float = 30) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + wait
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """As a crash would: nothing is kept (this Redis never writes to disk)."""
        assert self.process is not None
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, check=False
        )
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed here")
    from tests.support.stack import free_port

    with tempfile.TemporaryDirectory(prefix="redis-") as folder:
        server = RedisServer(free_port(), Path(folder))
        server.start()
        try:
            yield server
        finally:
            if server.process is not None and server.process.poll() is None:
                server.stop()


@contextmanager
def redis_broker(db: int = 7) -> Iterator[str]:
    """A broker URL on a Redis of this run's own (see RedisServer)."""
    with redis_server() as server:
        yield server.url(db)


@contextmanager
def rabbitmq_broker() -> Iterator[str]:
    """A fresh virtual host, so queues left by another run cannot deliver into this one."""
    ensure_up("rabbitmq")
    vhost = f"catalogue-test-{secrets.token_hex(4)}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60, check=False)


@contextmanager
def s3_bucket() -> Iterator[dict[str, str]]:
    """An S3-compatible server over HTTP on 127.0.0.1 (moto's), with an empty bucket; the env to use it."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.stack import free_port

    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_STORAGE_BUCKET_NAME": "catalogue-test",
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    bucket = env["AWS_STORAGE_BUCKET_NAME"]
    s3.create_bucket(Bucket=bucket)
    # As a deployment would: outputs are handed to customers, so anyone may read them.
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read))
    try:
        yield env
    finally:
        server.stop()
