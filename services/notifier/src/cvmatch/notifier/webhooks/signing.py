"""Webhook signatures: Standard Webhooks plus a SkillSync-style ``X-Signature``.

Standard Webhooks (https://www.standardwebhooks.com/):
    webhook-id:        msg_...                  (the same on every attempt of one message)
    webhook-timestamp: 1614265330               (unix seconds of this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")> [v1,<...> ...]
The key is the base64-decoded part of a ``whsec_<base64>`` secret. While a secret rotates, the endpoint
holds several secrets and every one signs, space-separated, so receivers on the old or the new secret
both verify.

SkillSync receivers verify ``X-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` with Node's
``crypto.createHmac('sha256', secret)``, where ``secret`` is the *string* they configured. So that their
code works unchanged after pasting our secret (DESIGN: "changing only the base URL and key"), the
default key for ``X-Signature`` is the UTF-8 bytes of the whole secret string as shown to the customer
(``whsec_...`` included). ``XSignatureKey.DECODED`` signs with the decoded bytes instead (the same key as
Standard Webhooks) for receivers that decode the secret. ``X-Signature`` covers the body only (no id or
timestamp), so it does not protect against replays; it exists for compatibility, and only the first
(current) secret signs it because the header holds one value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SECRET_PREFIX",
    "InvalidSecret",
    "SignatureVerificationError",
    "XSignatureKey",
    "decode_secret",
    "generate_secret",
    "sign",
    "signature_headers",
    "verify",
    "verify_x_signature",
    "x_signature",
]

SECRET_PREFIX = "whsec_"
# Standard Webhooks recommends keys of 24 to 64 bytes.
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
DEFAULT_TOLERANCE_S = 300
# An id appears in the signed content before a ".", so it must not contain one (the split between id
# and timestamp would become ambiguous); it is also a header value, so keep it to a safe alphabet.
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class InvalidSecret(ValueError):
    """A signing secret is not ``whsec_<base64>`` of 24 to 64 bytes."""


class SignatureVerificationError(Exception):
    """A webhook's signature headers are missing, stale or do not match any secret."""


class XSignatureKey(StrEnum):
    """Which bytes key the SkillSync-style ``X-Signature`` HMAC (see the module docstring)."""

    SECRET_STRING = "secret_string"
    DECODED = "decoded"


def generate_secret(num_bytes: int = 32) -> str:
    """A new random secret in the ``whsec_<base64>`` form."""
    if not MIN_KEY_BYTES <= num_bytes <= MAX_KEY_BYTES:
        raise ValueError(f"a secret must have {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(num_bytes)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the reference libs)."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the secret is not whsec_ followed by base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecret(f"the secret must decode to {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
    return key


def _check_message_id(msg_id: str) -> None:
    if not _MESSAGE_ID.match(msg_id):
        raise ValueError("a webhook id is 1 to 128 characters of [A-Za-z0-9_-]")


def _v1(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` header value: one ``v1,<base64>`` per secret, space-separated."""
    _check_message_id(msg_id)
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return " ".join(_v1(decode_secret(s), msg_id, int(timestamp), body) for s in secrets)


def _x_signature_key(secret: str, key: XSignatureKey) -> bytes:
    return decode_secret(secret) if key is XSignatureKey.DECODED else secret.encode("utf-8")


def x_signature(body: bytes, secret: str, key: XSignatureKey = XSignatureKey.SECRET_STRING) -> str:
    """The SkillSync-style ``X-Signature`` value: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    decode_secret(secret)  # refuse malformed secrets here too, whichever bytes key the HMAC
    digest = hmac.new(_x_signature_key(secret, key), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(
    msg_id: str,
    timestamp: int,
    body: bytes,
    secrets: Sequence[str],
    *,
    x_signature_key: XSignatureKey = XSignatureKey.SECRET_STRING,
) -> dict[str, str]:
    """Every signature header for one attempt. ``secrets[0]`` is the current secret (X-Signature's).

    Sign each attempt with its own ``timestamp`` (receivers reject stale ones) and the message's
    constant ``msg_id`` (receivers deduplicate on it).
    """
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(msg_id, timestamp, body, secrets),
        "X-Signature": x_signature(body, secrets[0], x_signature_key),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise SignatureVerificationError(f"missing header {name}")


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Verify Standard Webhooks headers as a receiver would; raise :class:`SignatureVerificationError`.

    Accepts when any ``v1`` signature in the header matches any of ``secrets`` and the timestamp is
    within ``tolerance_s`` of ``now`` (both directions, to bound replays).
    """
    msg_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp")
    signature_text = _header(headers, "webhook-signature")
    if not re.fullmatch(r"[0-9]{1,12}", timestamp_text):
        raise SignatureVerificationError("invalid webhook-timestamp")
    timestamp = int(timestamp_text)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureVerificationError("webhook-timestamp is outside the tolerance")
    if not _MESSAGE_ID.match(msg_id):
        raise SignatureVerificationError("invalid webhook-id")
    offered = [part for part in signature_text.split(" ") if part.startswith("v1,")]
    for secret in secrets:
        expected = _v1(decode_secret(secret), msg_id, timestamp, body).encode("ascii")
        for candidate in offered:
            # compare_digest on every pair: no early exit that would time the position of a match.
            if hmac.compare_digest(expected, candidate.encode("ascii", "replace")):
                return
    raise SignatureVerificationError("no matching signature")


def verify_x_signature(
    body: bytes, header: str, secret: str, key: XSignatureKey = XSignatureKey.SECRET_STRING
) -> bool:
    """Check an ``X-Signature`` header in constant time."""
    expected = x_signature(body, secret, key).encode("ascii")
    return hmac.compare_digest(expected, header.encode("utf-8", "replace"))
