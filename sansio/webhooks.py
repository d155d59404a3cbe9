"""Standard Webhooks signatures (https://www.standardwebhooks.com/), made by its own library.

HMAC-SHA256 over ``id.timestamp.body``, base64, in ``v1,<sig>``: receivers verify with any of the
scheme's libraries. Ours only maps the secret to key bytes and names the headers.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from standardwebhooks import Webhook, WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret


def secret_key(secret: str) -> bytes:
    """A ``whsec_``-prefixed secret carries base64 key bytes; any other string is used as it is.

    (The library would base64-decode any string: a plain secret configured before keeps its bytes.)
    """
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    return secret.encode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(secret_key(secret)).sign(message_id, when, body.decode())


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (the library: any of several signatures, a timestamp within 5 minutes)."""
    try:
        Webhook(secret_key(secret)).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True
