"""A completed request is announced once, signed, and retried from the database until delivered."""

from __future__ import annotations

import json
import uuid

import pytest

from sansio.webhooks import verify
from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.receiver import receive_webhooks
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def test_webhook_is_signed_and_retried_after_a_500(stack: Stack, image_server: ImageServer) -> None:
    url = image_server.add(f"{uuid.uuid4().hex}/a.jpg", photo((64, 48), "JPEG"))
    with receive_webhooks(500) as receiver:
        code, accepted = stack.upload(
            f"S. No.,Product Name,Input Image Urls\n1,SKU1,{url}\n".encode(), webhook_url=receiver.url
        )
        assert code == 202, accepted
        stack.wait_complete(accepted["request_id"])
        status = stack.wait_status(
            accepted["request_id"], lambda s: [d["status"] for d in s["webhooks"]] == ["delivered"]
        )
        # Nothing more may come: a delivered webhook is never sent again, whoever looks. Proven once
        # the reconciler (which re-sends the due ones) has run a whole pass after the delivery.
        stack.wait_reconciled()

    assert len(receiver.calls) == 2, "one failed attempt, one retry, nothing more"
    first, second = receiver.calls
    assert first.headers["webhook-id"] == second.headers["webhook-id"], "a retry is the same message"
    assert first.body == second.body
    for call in receiver.calls:
        assert verify(stack.webhook_secret, call.headers, call.body)
    payload = json.loads(second.body)
    assert payload["request_id"] == accepted["request_id"]
    assert payload["status"] == "completed"
    assert payload["result_file"] == status["result_file"]
    assert payload["progress"]["done"] == 1

    [delivery] = status["webhooks"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 204]
