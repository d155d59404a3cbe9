from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support import backends
from tests.support.imageserver import ImageServer, serve_images
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    with serve_images() as server:
        yield server


def start_stack(root: Path, extra_env: dict[str, str], *, workers: int = 1) -> Stack:
    stack = Stack(root, extra_env)
    stack.migrate()
    for n in range(workers):
        stack.start_worker(f"worker{n + 1}", beat=n == 0)
    try:
        stack.start_web()
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(
    scope="module",
    params=[
        "embedded",
        # moto's S3 server over HTTP needs nothing installed: S3 storage is proven in every run.
        "embedded+s3",
        pytest.param("redis+postgresql", marks=pytest.mark.scaleout),
        pytest.param("rabbitmq+postgresql+s3", marks=pytest.mark.scaleout),
    ],
)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole service as real processes: the embedded default (on disk, then on S3), then the
    scale-out parts. (No MinIO: its server is on neither PyPI nor Debian, so it cannot be installed
    here; moto speaks the same S3 API over HTTP.)"""
    with ExitStack() as resources:
        env: dict[str, str] = {}
        if "postgresql" in request.param:
            env["DATABASE_URL"] = resources.enter_context(backends.postgres_database())
        if "redis" in request.param:
            env["CELERY_BROKER_URL"] = resources.enter_context(backends.redis_broker())
        if "rabbitmq" in request.param:
            env["CELERY_BROKER_URL"] = resources.enter_context(backends.rabbitmq_broker())
        if "s3" in request.param:
            env.update(resources.enter_context(backends.s3_bucket()))
        stack = start_stack(tmp_path_factory.mktemp(request.param.replace("+", "-")), env)
        resources.callback(stack.stop)
        yield stack


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One embedded stack, for tests of what talks HTTP (pages, command line, metrics): the
    backends behind it are proven by the parametrised `stack` tests."""
    stack = start_stack(tmp_path_factory.mktemp("embedded"), {})
    try:
        yield stack
    finally:
        stack.stop()
