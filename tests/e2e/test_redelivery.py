"""Every task delivered twice, through the real broker to a real worker: nothing is done twice.

Brokers deliver at least once (a lost ack, a visibility timeout, the reconciler re-sending what it
thinks was lost), so the same ``process_images``, ``dispatch_request`` and ``finalize_request``
arriving again, in other groupings, while and after the work is done, must change nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid

import pytest

from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e

RESEND = """
import json
from catalog.models import ProcessingRequest, ProductImage
from catalog.tasks import dispatch_request, finalize_request, process_images
request = ProcessingRequest.objects.get(request_id="{request_id}")
ids = list(ProductImage.objects.filter(request=request).order_by("pk").values_list("pk", flat=True))
sent = [process_images.delay([pk]) for pk in ids]  # one by one: other batches than the originals
sent += [process_images.delay(ids), dispatch_request.delay(request.pk), finalize_request.delay(request.pk)]
print(json.dumps({{"images": ids, "tasks": [task.id for task in sent]}}))
"""

STATE = """
import json
from catalog.models import ProcessingRequest, ProductImage
request = ProcessingRequest.objects.get(request_id="{request_id}")
images = ProductImage.objects.filter(request=request)
print(json.dumps({{
    "attempts": sorted(images.values_list("attempts", flat=True)),
    "outputs": sorted(images.values_list("output_file", flat=True)),
    "counters": [request.images_done, request.images_failed, request.images_total],
    "completed_at": request.completed_at.isoformat(),
}}))
"""


def manage_shell(stack: Stack, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_every_task_delivered_twice_changes_nothing(embedded_stack: Stack, image_server: ImageServer) -> None:
    prefix = uuid.uuid4().hex
    # Downloads wait at a gate, so the second deliveries surely arrive while the first ones work.
    gate = threading.Event()
    urls = [
        image_server.add(f"{prefix}/{n}.jpg", photo((200 + n, 150), "JPEG"), "image/jpeg", gate=gate)
        for n in range(6)
    ]
    body = "S. No.,Product Name,Input Image Urls\n" + "".join(
        f'{n + 1},Item {n + 1},"{url}"\n' for n, url in enumerate(urls)
    )
    code, accepted = embedded_stack.upload(body.encode())
    assert code == 202, accepted
    request_id = accepted["request_id"]

    try:
        resent = json.loads(manage_shell(embedded_stack, RESEND.format(request_id=request_id)))
        assert len(resent["images"]) == 6
        assert not embedded_stack.status(request_id)["completed"]
    finally:
        gate.set()
    status = embedded_stack.wait_complete(request_id)
    first = json.loads(manage_shell(embedded_stack, STATE.format(request_id=request_id)))

    # The same again, after completion; then wait until the worker says it has run every one of them
    # (and the first ones), so "nothing changed" is looked at after the worker has looked.
    again = json.loads(manage_shell(embedded_stack, RESEND.format(request_id=request_id)))
    embedded_stack.wait_tasks_done(resent["tasks"] + again["tasks"])
    after = json.loads(manage_shell(embedded_stack, STATE.format(request_id=request_id)))

    assert status["status"] == "completed" and status["progress"]["done"] == 6, status
    assert after == first, "deliveries after completion changed nothing"
    assert after["counters"] == [6, 0, 6]
    assert after["attempts"] == [1] * 6, "each image claimed, and run, once"
    assert len(set(after["outputs"])) == 6 and all(after["outputs"])
    for url in urls:
        assert image_server.hits["/" + url.split("/", 3)[3]] == 1, f"{url} downloaded once"
    # Outputs are named by content (shared between requests): this module's stack made only these.
    outputs = sorted(p.name for p in (embedded_stack.root / "var/media/outputs/by-content").iterdir())
    assert outputs == sorted(name.rsplit("/", 1)[1] for name in after["outputs"]), "no stray files"
