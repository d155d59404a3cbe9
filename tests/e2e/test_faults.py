"""Scale-out faults on the real servers: a worker killed with SIGKILL, a broker restart, two clients at once.

Two worker processes under different hostnames share Redis, PostgreSQL and an S3-compatible bucket.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import boto3
import psycopg
import pytest
from django.conf import settings
from PIL import Image

from tests.e2e.conftest import start_stack
from tests.support import backends
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.scaleout]

BATCHES_PER_PROCESS = 3  # in the cluster's workers (see cluster)


@pytest.fixture(scope="module")
def redis() -> Iterator[backends.RedisServer]:
    """The cluster's broker, which the tests stop and start again."""
    with backends.redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(
    redis: backends.RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, str]]]:
    with ExitStack() as resources:
        env = {
            "DATABASE_URL": resources.enter_context(backends.postgres_database()),
            "CELERY_BROKER_URL": redis.url(7),
            # The reconciler takes back a dead worker's images after this. Not less: the kill test
            # freezes a worker (SIGSTOP) again and again until it holds claims, and frozen it holds
            # machine-wide slots (transforms, connections) that slow the live worker's batches; at
            # 10 s, with 3 batches in hand a process, the live worker's claims expired too.
            "IMAGE_LEASE_SECONDS": "30",
            # A batch must fit in its lease (less a tenth to settle): BATCHES_PER_PROCESS batches of
            # 16 on 64 downloads can take 2 rounds of this deadline. The images here are small and next door.
            "FETCH_TOTAL_TIMEOUT": "10",
            # Fewer than the default 5 a process: the kill test freezes a worker until more images
            # run than one worker can hold, and with 5 (160 a worker) that took long enough for the
            # frozen worker's claims to near their lease (144 and once, with other code, 176 taken over).
            "IMAGE_BATCHES_PER_PROCESS": str(BATCHES_PER_PROCESS),
            **resources.enter_context(backends.s3_bucket()),
        }
        stack = start_stack(tmp_path_factory.mktemp("cluster"), env, workers=2)
        resources.callback(stack.stop)
        yield stack, env


def small_jpeg(seed: int, tag: str) -> bytes:
    """Bytes of its own for each image (the comment): identical inputs would share one output."""
    buf = io.BytesIO()
    image = Image.new("RGB", (96, 64), (seed % 256, (seed * 7) % 256, 90))
    image.save(buf, "JPEG", quality=90, comment=f"{tag}-{seed}")
    return buf.getvalue()


def catalogue(server: ImageServer, images: int, per_row: int = 5) -> tuple[bytes, list[str]]:
    prefix = uuid.uuid4().hex
    urls = [server.add(f"{prefix}/{n}.jpg", small_jpeg(n, prefix)) for n in range(images)]
    lines = ["S. No.,Product Name,Input Image Urls"]
    for row, start in enumerate(range(0, images, per_row), start=1):
        lines.append(f'{row},SKU{row},"{",".join(urls[start : start + per_row])}"')
    return ("\n".join(lines) + "\n").encode(), urls


def request_images(database_url: str, request_id: str, select: str, group_by: str = "") -> dict[str, int]:
    """`select` (two columns) over the request's image rows, as a dict."""
    with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            f"SELECT {select} FROM catalog_productimage i JOIN catalog_processingrequest r "
            f"ON r.id = i.request_id WHERE r.request_id = %s {group_by}",
            (request_id,),
        ).fetchall()
    return dict(rows)


def image_rows(database_url: str, request_id: str) -> dict[str, int]:
    return request_images(database_url, request_id, "i.status, count(*)", "GROUP BY i.status")


def output_keys(stack: Stack, env: dict[str, str], request_id: str) -> list[str]:
    """The bucket keys of the request's outputs (named by content), each checked to be in the bucket."""
    result = stack.get(stack.status(request_id)["result_file"]).data.decode()
    urls = [url for row in list(csv.reader(io.StringIO(result)))[1:] for url in row[3].split(",") if url]
    keys = ["outputs/" + url.split("/outputs/", 1)[1] for url in urls]
    stored = set(bucket_keys(env, "outputs/by-content/"))
    assert set(keys) <= stored, "every output is in the bucket"
    return keys


def bucket_keys(env: dict[str, str], prefix: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env["AWS_STORAGE_BUCKET_NAME"], Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def wait_for_progress(stack: Stack, request_id: str, fraction: float) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = stack.status(request_id)["progress"]
        if progress["done"] + progress["failed"] >= progress["images"] * fraction:
            return
        time.sleep(0.05)
    raise AssertionError(f"no progress: {stack.logs()}")


# A worker of the cluster runs 2 pool processes, each working on up to BATCHES_PER_PROCESS batches
# at once, and as many again that gave their room up while they wait only on a host that has not
# answered the process (catalog/batchpipeline.py: on a loaded machine, the image host's first
# answers can take that long).
HELD_PER_WORKER = 2 * BATCHES_PER_PROCESS * settings.IMAGE_BATCH_SIZE
HELD_AT_MOST_PER_WORKER = 2 * HELD_PER_WORKER


def held_by(database_url: str, request_id: str, node: str) -> set[str]:
    """The request's images a worker (its hostname) holds claims on now."""
    running = request_images(
        database_url, request_id, "i.input_url, i.claimed_by", "AND i.status = 'running'"
    )
    return {url for url, claimant in running.items() if str(claimant).startswith(f"{node}@")}


def image_attempts(database_url: str, request_id: str) -> dict[str, int]:
    return request_images(database_url, request_id, "i.input_url, i.attempts")


def freeze_while_holding_claims(stack: Stack, name: str, database_url: str, request_id: str) -> None:
    """Stop worker `name` (SIGSTOP) at a moment it holds claims (read while it is stopped). Frozen, it
    can settle none of them before it is killed."""
    group = stack.processes[name].pid
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        os.killpg(group, signal.SIGSTOP)
        if held_by(database_url, request_id, name):
            return
        os.killpg(group, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError(f"{name} was never seen holding claims\n{stack.logs()}")


def test_a_worker_killed_mid_request_loses_nothing(
    cluster: tuple[Stack, dict[str, str]], image_server: ImageServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, env = cluster
    body, urls = catalogue(image_server, 500)
    code, accepted = stack.upload(body)
    assert code == 202, accepted
    request_id = accepted["request_id"]

    wait_for_progress(stack, request_id, 0.2)
    freeze_while_holding_claims(stack, "worker2", env["DATABASE_URL"], request_id)
    held = held_by(env["DATABASE_URL"], request_id, "worker2")  # frozen: what it holds when killed
    stack.kill("worker2")  # SIGKILL to the worker and its pool children
    status = stack.wait_complete(request_id, timeout=240)

    assert status["status"] == "completed", [(e["url"], e.get("error")) for e in status["errors"][:3]]
    progress = status["progress"]
    assert {k: v for k, v in progress.items() if k != "reused"} == {
        **{"products": 100, "images": 500, "done": 500, "failed": 0, "percent": 100},
        **{"cancelled": 0},
    }
    assert image_rows(env["DATABASE_URL"], request_id) == {"done": 500}, "counters match the rows exactly"
    keys = output_keys(stack, env, request_id)
    assert len(keys) == len(set(keys)) == 500, "one output per image, no duplicates"
    fetched_again = {u for u in urls if image_server.hits[u.split(str(image_server.port), 1)[1]] > 1}
    taken_over = {
        url for url, attempts in image_attempts(env["DATABASE_URL"], request_id).items() if attempts > 1
    }
    with capsys.disabled():
        print(
            f"\n[kill -9] 500 images: 0 lost, 0 counted twice, {len(held)} held by the killed worker and "
            f"taken over; {len(taken_over)} tried more than once, {len(fetched_again)} fetched again"
        )
    assert held, "the killed worker held claims"
    assert len(held) <= HELD_AT_MOST_PER_WORKER, "no more than a worker can hold"
    assert held <= taken_over, "another worker took over every image the killed one held"
    # An output the killed worker stored before it could settle is found by its content key, not
    # made again: reused, and only ever one of the images taken over.
    assert progress["reused"] <= len(taken_over), progress
    assert fetched_again <= taken_over, "only the killed worker's images were fetched again"

    stack.start_worker("worker2", beat=False)  # leave the cluster as it was for the next test


def test_a_broker_restart_mid_request_is_survived(
    cluster: tuple[Stack, dict[str, str]], image_server: ImageServer, redis: backends.RedisServer
) -> None:
    stack, env = cluster
    body, _ = catalogue(image_server, 300)
    code, accepted = stack.upload(body)
    assert code == 202, accepted
    request_id = accepted["request_id"]

    wait_for_progress(stack, request_id, 0.2)
    # This Redis keeps nothing on disk: the restart drops every queued message. The database still
    # knows what is left, and the reconciler re-queues it.
    redis.stop()
    redis.start()
    status = stack.wait_complete(request_id, timeout=240)

    assert status["status"] == "completed", status["errors"][:3]
    assert status["progress"]["done"] == 300
    assert image_rows(env["DATABASE_URL"], request_id) == {"done": 300}
    assert len(set(output_keys(stack, env, request_id))) == 300


def test_two_clients_at_once_get_their_own_results(
    cluster: tuple[Stack, dict[str, str]], image_server: ImageServer
) -> None:
    stack, _ = cluster
    catalogues = [catalogue(image_server, 60), catalogue(image_server, 45)]
    accepted: list[dict[str, str]] = [{}, {}]

    def client(n: int) -> None:
        code, body = stack.upload(catalogues[n][0], filename=f"client{n}.csv")
        assert code == 202
        accepted[n] = body

    threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for n, (_, urls) in enumerate(catalogues):
        status = stack.wait_complete(accepted[n]["request_id"], timeout=180)
        assert status["status"] == "completed"
        assert status["name"] == f"client{n}.csv"
        assert status["progress"]["images"] == len(urls)
        result = stack.get(status["result_file"]).data.decode()
        assert all(url in result for url in urls)
        other = catalogues[1 - n][1]
        assert not any(url in result for url in other), "no cross-talk between requests"
        assert result.count("/outputs/by-content/") == len(urls)


def test_the_cluster_is_still_up_after_the_faults(cluster: tuple[Stack, dict[str, str]]) -> None:
    stack, _ = cluster
    assert all(proc.poll() is None for proc in stack.processes.values()), stack.logs()
    assert stack.wait_healthy()["status"] == "ok"


def test_an_upload_while_the_broker_is_down_is_kept_and_done_later(
    cluster: tuple[Stack, dict[str, str]], image_server: ImageServer, redis: backends.RedisServer
) -> None:
    """The enqueue after commit fails (as after a crash between commit and enqueue); nothing is lost."""
    stack, env = cluster
    body, _ = catalogue(image_server, 20)
    redis.stop()
    try:
        code, accepted = stack.upload(body)
    finally:
        redis.start()
    assert code == 202, accepted
    status = stack.wait_complete(accepted["request_id"], timeout=240)
    assert status["status"] == "completed"
    assert image_rows(env["DATABASE_URL"], accepted["request_id"]) == {"done": 20}
