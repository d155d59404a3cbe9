"""Standard Webhooks signatures: HMAC-SHA256 over ``id.timestamp.body``, base64, in ``v1,<sig>``.

See https://www.standardwebhooks.com/ — receivers can verify with any of its libraries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret


def secret_key(secret: str) -> bytes:
    """A ``whsec_``-prefixed secret carries base64 key bytes; any other string is used as it is."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    return secret.encode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute and compare in constant time (any of several signatures)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    expected = signature(secret, lowered["webhook-id"], int(lowered["webhook-timestamp"]), body)
    offered = lowered.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
