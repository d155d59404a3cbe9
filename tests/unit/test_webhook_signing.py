from __future__ import annotations

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
    headers = signed_headers(SPEC_SECRET, "msg_1", 1700000000, b'{"a":1}')
    assert headers["webhook-id"] == "msg_1"
    assert verify(SPEC_SECRET, headers, b'{"a":1}')
    assert not verify(SPEC_SECRET, headers, b'{"a":2}')
    assert not verify("whsec_" + "A" * 32, headers, b'{"a":1}')
