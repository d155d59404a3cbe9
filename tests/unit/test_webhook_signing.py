from __future__ import annotations

import base64
import hashlib
import hmac
import time

from sansio.webhooks import signature, signed_headers, verify

# The example from the Standard Webhooks specification's reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'


def test_matches_the_specification_example() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_receiver_verifies_what_we_sign_and_rejects_tampering() -> None:
    now = int(time.time())
    headers = signed_headers(SPEC_SECRET, "msg_1", now, b'{"a":1}')
    assert headers["webhook-id"] == "msg_1"
    assert verify(SPEC_SECRET, headers, b'{"a":1}')
    assert not verify(SPEC_SECRET, headers, b'{"a":2}')
    assert not verify("whsec_" + "A" * 32, headers, b'{"a":1}')
    replayed = signed_headers(SPEC_SECRET, "msg_1", now - 3600, b'{"a":1}')
    assert not verify(SPEC_SECRET, replayed, b'{"a":1}'), "an hour-old message is refused (replay)"


def test_the_library_signs_byte_for_byte_as_the_scheme_says() -> None:
    """The bytes our contract promises: HMAC-SHA256 of id.timestamp.body, base64, after "v1,"."""
    body = '{"request_id": "6f1c", "note": "caf\u00e9 \u2713"}'.encode()
    key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_2.1614265330." + body, hashlib.sha256).digest()
    assert signature(SPEC_SECRET, "msg_2", 1614265330, body) == "v1," + base64.b64encode(digest).decode()
    plain = hmac.new(b"a plain secret", b"msg_2.1614265330." + body, hashlib.sha256).digest()
    assert signature("a plain secret", "msg_2", 1614265330, body) == "v1," + base64.b64encode(plain).decode()
