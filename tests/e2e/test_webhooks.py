"""A completed request is announced once, signed, and retried from the database until delivered."""

from __future__ import annotations

import json
import time
import uuid

from sansio.webhooks import verify
from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.receiver import receive_webhooks
from tests.support.stack import Stack

DEVELOPMENT_SECRET = "whsec_ZGV2ZWxvcG1lbnQtb25seS13ZWJob29rLWtleQ=="


def test_webhook_is_signed_and_retried_after_a_500(stack: Stack, image_server: ImageServer) -> None:
    url = image_server.add(f"{uuid.uuid4().hex}/a.jpg", photo((64, 48), "JPEG"))
    with receive_webhooks(500) as receiver:
        code, accepted = stack.upload(
            f"S. No.,Product Name,Input Image Urls\n1,SKU1,{url}\n".encode(), webhook_url=receiver.url
        )
        assert code == 202, accepted
        status = stack.wait_complete(accepted["request_id"])
        deadline = time.monotonic() + 60
        while len(receiver.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # let the delivery record its outcome
        status = stack.status(accepted["request_id"])

    assert len(receiver.calls) == 2, "one failed attempt, one retry, nothing more"
    first, second = receiver.calls
    assert first.headers["webhook-id"] == second.headers["webhook-id"], "a retry is the same message"
    assert first.body == second.body
    for call in receiver.calls:
        assert verify(DEVELOPMENT_SECRET, call.headers, call.body)
    payload = json.loads(second.body)
    assert payload["request_id"] == accepted["request_id"]
    assert payload["status"] == "completed"
    assert payload["result_file"] == status["result_file"]
    assert payload["progress"]["done"] == 1

    [delivery] = status["webhooks"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 204]
