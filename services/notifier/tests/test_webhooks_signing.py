"""Signatures: the Standard Webhooks test vector, rotation, verification and SkillSync's recipe."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from cvmatch.notifier.webhooks import (
    InvalidSecret,
    SignatureVerificationError,
    XSignatureKey,
    decode_secret,
    generate_secret,
    sign,
    signature_headers,
    verify,
    verify_x_signature,
    x_signature,
)

# Published Standard Webhooks test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def skillsync_verify_webhook_signature(payload: bytes, signature: str, secret: str) -> bool:
    """SkillSync's documented Node.js receiver, line by line:

    const hmac = crypto.createHmac('sha256', secret);          // secret: the configured string
    const digest = hmac.update(payload).digest('hex');
    const expected = `sha256=${digest}`;
    return crypto.timingSafeEqual(Buffer.from(signature, 'utf8'), Buffer.from(expected, 'utf8'));
    """
    digest = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    expected = f"sha256={digest}"
    a, b = signature.encode("utf-8"), expected.encode("utf-8")
    if len(a) != len(b):  # timingSafeEqual throws a RangeError on different lengths
        raise ValueError("Input buffers must have the same byte length")
    return hmac.compare_digest(a, b)


def test_standard_webhooks_vector() -> None:
    assert sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [VECTOR_SECRET]) == VECTOR_SIGNATURE
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_BODY, headers, [VECTOR_SECRET], now=VECTOR_TS)


def test_verify_rejects_tampering_staleness_and_other_secrets() -> None:
    headers = {
        "Webhook-Id": VECTOR_ID,
        "Webhook-Timestamp": str(VECTOR_TS),
        "Webhook-Signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_BODY, headers, [VECTOR_SECRET], now=VECTOR_TS + 299)  # header names are case-insensitive
    with pytest.raises(SignatureVerificationError):
        verify(b'{"test": 2432232315}', headers, [VECTOR_SECRET], now=VECTOR_TS)
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_BODY, headers, [VECTOR_SECRET], now=VECTOR_TS + 301)
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_BODY, headers, [VECTOR_SECRET], now=VECTOR_TS - 301)
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_BODY, headers, [generate_secret()], now=VECTOR_TS)
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_BODY, {**headers, "Webhook-Id": "msg_other"}, [VECTOR_SECRET], now=VECTOR_TS)
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_BODY, {"webhook-id": VECTOR_ID}, [VECTOR_SECRET], now=VECTOR_TS)


def test_rotation_signs_with_every_secret() -> None:
    old, new = VECTOR_SECRET, generate_secret()
    header = sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [new, old])
    parts = header.split(" ")
    assert len(parts) == 2 and parts[1] == VECTOR_SIGNATURE
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": header}
    verify(VECTOR_BODY, headers, [old], now=VECTOR_TS)  # a receiver still on the old secret
    verify(VECTOR_BODY, headers, [new], now=VECTOR_TS)  # and one already on the new one
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_BODY, headers, [generate_secret()], now=VECTOR_TS)


def test_signature_headers_and_skillsync_receiver() -> None:
    secret = generate_secret()
    body = b'{"data":{"batch_job_id":"b_1"},"id":"msg_1","type":"batch.completed"}'
    headers = signature_headers("msg_1", 1_700_000_000, body, [secret, VECTOR_SECRET])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature", "X-Signature"}
    assert headers["webhook-timestamp"] == "1700000000"
    verify(body, headers, [secret], now=1_700_000_000)
    # The SkillSync recipe, unchanged, with the secret string the customer copied from us.
    assert skillsync_verify_webhook_signature(body, headers["X-Signature"], secret)
    assert not skillsync_verify_webhook_signature(body + b" ", headers["X-Signature"], secret)
    assert verify_x_signature(body, headers["X-Signature"], secret)
    assert not verify_x_signature(body, headers["X-Signature"], VECTOR_SECRET)
    assert not verify_x_signature(body, "sha256=00", secret)


def test_x_signature_with_decoded_key() -> None:
    body = b"{}"
    value = x_signature(body, VECTOR_SECRET, XSignatureKey.DECODED)
    expected = hmac.new(decode_secret(VECTOR_SECRET), body, hashlib.sha256).hexdigest()
    assert value == f"sha256={expected}"
    assert verify_x_signature(body, value, VECTOR_SECRET, XSignatureKey.DECODED)
    assert value != x_signature(body, VECTOR_SECRET)


def test_secrets() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(decode_secret(secret)) == 32
    assert decode_secret(VECTOR_SECRET[len("whsec_") :]) == decode_secret(VECTOR_SECRET)
    for bad in ["whsec_not base64!", "whsec_" + "QUJD", "whsec_", "whsec_" + "A" * 100]:
        with pytest.raises(InvalidSecret):
            decode_secret(bad)
    with pytest.raises(ValueError):
        generate_secret(8)


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1", "msg\r\n1", "m" * 129])
def test_message_ids_are_header_safe(msg_id: str) -> None:
    with pytest.raises(ValueError):
        sign(msg_id, VECTOR_TS, VECTOR_BODY, [VECTOR_SECRET])


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [])
