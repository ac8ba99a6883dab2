"""The notifier's rules: event names, endpoints, deliveries, secrets at rest, payloads from events.

No gRPC, Postgres or NATS here: the servicer, repository and consumers call these.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cvmatch.notifier import errors
from cvmatch.notifier.webhooks import WebhookEvent, batch_event, build_event

# Event types a customer can subscribe to. The SkillSync names are accepted so that SkillSync clients
# can register unchanged; cvmatch has no producer of them yet, so they never fire today.
BATCH_COMPLETED = "batch.completed"
BATCH_FAILED = "batch.failed"
CANDIDATE_MATCHED = "candidate.matched"
CREDITS_LOW = "credits.low"
TEST_EVENT = "webhook.test"
EVENT_TYPES: frozenset[str] = frozenset({
    BATCH_COMPLETED, BATCH_FAILED, CANDIDATE_MATCHED, CREDITS_LOW,
    "match.created", "match.accepted", "match.rejected", "profile.updated",
})
ALL_EVENTS = "*"
# What a submission's one-off webhook_url receives: the batch's own end.
BATCH_ENDPOINT_EVENTS: tuple[str, ...] = (BATCH_COMPLETED, BATCH_FAILED)
# The well-known webhook id of an account's submission webhooks (every per-batch webhook_url): its
# secret signs them all and is read by rotating it, like any endpoint's.
SUBMISSIONS_ID = "submissions"
# Why an endpoint whose current signing secret cannot be decrypted was disabled (and its deliveries failed).
UNREADABLE_SECRET_REASON = ("the webhook's signing secret cannot be decrypted with the configured "
                            "NOTIFIER_SECRETS_KEY; rotate the secret, then enable the webhook")
NO_SECRET_REASON = "the webhook has no signing secret; rotate the secret, then enable the webhook"

MAX_URL = 2048
MAX_DESCRIPTION = 500
MAX_EVENTS = 32
MAX_LIST = 500
DEFAULT_LIST = 50
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


def normalise_events(events: Iterable[str]) -> tuple[str, ...]:
    """The subscribed event types, sorted and unique; ``*`` means every type. Raises INVALID_INPUT."""
    out: set[str] = set()
    for raw in events:
        name = raw.strip().lower()
        if name != ALL_EVENTS and name not in EVENT_TYPES:
            raise errors.invalid_input(
                f"Unknown event type '{raw[:64]}'; expected one of {', '.join(sorted(EVENT_TYPES))} or '*'",
                "events")
        out.add(name)
    if not out:
        raise errors.invalid_input("'events' must name at least one event type (or '*')", "events")
    if len(out) > MAX_EVENTS:
        raise errors.invalid_input(f"'events' has more than {MAX_EVENTS} entries", "events")
    return (ALL_EVENTS,) if ALL_EVENTS in out else tuple(sorted(out))


def check_description(value: str) -> str:
    """A trimmed description, at most MAX_DESCRIPTION characters."""
    value = value.strip()
    if len(value) > MAX_DESCRIPTION:
        raise errors.invalid_input(f"'description' is longer than {MAX_DESCRIPTION} characters", "description")
    return value


def parse_uuid(value: str, field_name: str) -> uuid.UUID:
    """A UUID from a request; an unparseable id is NOT_FOUND (it names nothing that exists)."""
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise errors.not_found(f"No {field_name.replace('_id', '')} with id '{value[:64]}'") from None


def delivery_limit(value: int) -> int:
    """How many deliveries a list returns."""
    if value < 0:
        raise errors.invalid_input("'limit' must not be negative", "limit")
    return min(value or DEFAULT_LIST, MAX_LIST)


def delivery_status(value: str) -> str | None:
    """A delivery status filter; empty means all."""
    value = value.strip().lower()
    if not value:
        return None
    if value not in DELIVERY_STATUSES:
        raise errors.invalid_input(f"'status' must be one of {', '.join(DELIVERY_STATUSES)}", "status")
    return value


class SecretBox:
    """Signing secrets at rest: AES-256-GCM under the operator's key, bound to the endpoint id.

    HMAC signing needs the secret itself on every attempt, so unlike API keys it cannot be stored as a
    hash. Encrypting it keeps a database dump or backup from leaking every customer's signing secret;
    the endpoint id is the associated data, so a ciphertext copied onto another endpoint does not open.
    """

    NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, endpoint_id: uuid.UUID, secret: str) -> bytes:
        """Nonce plus ciphertext of ``secret``."""
        nonce = os.urandom(self.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), endpoint_id.bytes)

    def open(self, endpoint_id: uuid.UUID, sealed: bytes) -> str:
        """The secret; raises ValueError when the key or the endpoint does not match."""
        try:
            plain = self._aead.decrypt(sealed[: self.NONCE_BYTES], sealed[self.NONCE_BYTES :], endpoint_id.bytes)
        except InvalidTag:
            raise ValueError("a webhook secret does not decrypt under the configured key") from None
        return plain.decode()


def submission_secret_binding(account_id: int) -> uuid.UUID:
    """The associated data a submission secret is sealed under (binds it to its account)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"cvmatch:notifier:submission-secret:{account_id}")


@dataclass(frozen=True)
class Endpoint:
    """A webhook destination (an account's, or one batch's)."""

    endpoint_id: uuid.UUID
    account_id: int
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    disabled_reason: str | None
    batch_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def wants(self, event_type: str) -> bool:
        """True when the endpoint subscribes to ``event_type``."""
        return ALL_EVENTS in self.events or event_type in self.events


@dataclass(frozen=True)
class Attempt:
    """One attempt of a delivery, as logged."""

    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: dt.datetime


@dataclass(frozen=True)
class Delivery:
    """An event delivery to one endpoint and its attempt log."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: str
    event_type: str
    message_id: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    attempt_log: tuple[Attempt, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery with what one attempt needs (secrets decrypted, current first)."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    account_id: int
    event_type: str
    message_id: str
    body: bytes
    url: str
    secrets: Sequence[str]
    attempts: int
    round_attempts: int


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to create: the event as it will be sent, for the endpoints that want it."""

    event_id: str
    account_id: int
    event: WebhookEvent
    batch_id: uuid.UUID | None = None


def message_id_for(event_id: str) -> str:
    """The webhook-id of an event: stable, so a redelivered source event maps to the same message."""
    try:
        return "msg_" + uuid.UUID(event_id).hex
    except ValueError:
        return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"cvmatch:event:{event_id}").hex


def _link(public_url: str, path: str) -> str | None:
    return f"{public_url}{path}" if public_url else None


def _when(ts: dt.datetime | None) -> dt.datetime | None:
    return ts if ts is not None and ts.year > 1970 else None


def batch_completed(event_id: str, *, batch_id: str, total: int, matched: int, failed: int,
                    completed_at: dt.datetime | None, public_url: str) -> WebhookEvent:
    """``batch.completed``: ids, counts and a link to the results (no candidate data)."""
    return batch_event(
        BATCH_COMPLETED, batch_job_id=batch_id, status="completed", total_candidates=total,
        processed_candidates=matched + failed, failed_candidates=failed,
        link=_link(public_url, f"/api/v1/batch-jobs/{batch_id}/results"),
        event_id=message_id_for(event_id), occurred_at=_when(completed_at))


def batch_failed(event_id: str, *, batch_id: str, completed_at: dt.datetime | None,
                 public_url: str) -> WebhookEvent:
    """``batch.failed``: the batch id and status; the error text stays behind the authenticated API."""
    return build_event(
        BATCH_FAILED,
        {"batch_job_id": batch_id, "status": "failed",
         **({"link": link} if (link := _link(public_url, f"/api/v1/batch-jobs/{batch_id}/status")) else {})},
        event_id=message_id_for(event_id), occurred_at=_when(completed_at))


def candidate_matched(event_id: str, *, candidate_id: str, batch_id: str, score: float,
                      verdict: str) -> WebhookEvent:
    """``candidate.matched``: ids, the score and the verdict band."""
    return build_event(
        CANDIDATE_MATCHED,
        {"candidate_id": candidate_id, "batch_job_id": batch_id, "score": round(score, 2),
         "verdict": verdict[:64]},
        event_id=message_id_for(event_id))


def credits_low(event_id: str, *, account_id: int, available: int, threshold: int) -> WebhookEvent:
    """``credits.low``: the balance and the threshold it crossed."""
    return build_event(
        CREDITS_LOW, {"account_id": account_id, "available": available, "threshold": threshold},
        event_id=message_id_for(event_id))


def ping_event(endpoint_id: uuid.UUID) -> WebhookEvent:
    """The ping SendTestEvent delivers."""
    return build_event(TEST_EVENT, {"webhook_id": str(endpoint_id), "test": True})
