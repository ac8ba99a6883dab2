"""What the notifier publishes and consumes, in one registry.

Publishes (through the outbox, in the transaction that records the last attempt):
- `notifier.delivery.failed` (DeliveryFailed): a delivery exhausted its retries or its endpoint is gone.

Consumes (durable consumers named `notifier__<subject>`, applied exactly once per event id):
- `ingest.batch.created` (BatchCreated): registers the submission's webhook_url as the batch's endpoint.
- `ingest.batch.completed` / `ingest.batch.failed` -> webhook `batch.completed` / `batch.failed`.
- `matcher.candidate.matched` -> `candidate.matched`.
- `billing.credits.low` -> `credits.low`.
Each event becomes one delivery row per endpoint that wants it, in the consumer's transaction; the
unique (endpoint, event id) makes a redelivered event add nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cvmatch.api.billing.v1 import events_pb2 as billing_events
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.api.notifier.v1 import events_pb2 as notifier_events
from cvmatch.platform.consumer import Subscription
from cvmatch.platform.events import Event

if TYPE_CHECKING:
    from cvmatch.notifier.repository import Conn, Repository

log = logging.getLogger(__name__)

CONSUMER = "notifier"

DELIVERY_FAILED = "notifier.delivery.failed"

BATCH_CREATED = "ingest.batch.created"
BATCH_COMPLETED = "ingest.batch.completed"
BATCH_FAILED = "ingest.batch.failed"
CANDIDATE_MATCHED = "matcher.candidate.matched"
CREDITS_LOW = "billing.credits.low"

PUBLISHES: dict[str, type[Any]] = {DELIVERY_FAILED: notifier_events.DeliveryFailed}


def delivery_failed(delivery_id: str, endpoint_id: str, account_id: int, event_type: str,
                    attempts: int) -> notifier_events.DeliveryFailed:
    """The payload of `notifier.delivery.failed`."""
    return notifier_events.DeliveryFailed(delivery_id=delivery_id, endpoint_id=endpoint_id, account_id=account_id,
                                          event_type=event_type, attempts=attempts)


def _batch_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def subscriptions(repo: Repository, *, public_url: str, new_secret: Callable[[], str],
                  notify: Callable[[int], None]) -> list[Subscription[Any]]:
    """The consumers the notifier runs, bound to its repository.

    ``notify(n)`` is told how many deliveries an event queued (wakes the local workers).
    """
    from cvmatch.notifier import domain

    async def register_batch_url(conn: Conn, account_id: int, batch_id: str, url: str) -> None:
        batch = _batch_uuid(batch_id)
        if url and batch is not None:
            # ingest validated the URL at submission (ValidateUrl); it is re-checked before every attempt.
            await repo.ensure_batch_endpoint(conn, account_id, batch, url, new_secret())

    async def fan_out(conn: Conn, new: domain.NewDelivery) -> None:
        created = await repo.fan_out(conn, new)
        if created:
            notify(created)

    async def on_created(conn: Conn, event: Event[ingest_events.BatchCreated]) -> None:
        p = event.payload
        await register_batch_url(conn, p.account_id, p.batch_id, p.webhook_url)

    async def on_completed(conn: Conn, event: Event[ingest_events.BatchCompleted]) -> None:
        p = event.payload
        # The end event carries the URL too: the batch's endpoint exists even if this arrives first.
        await register_batch_url(conn, p.account_id, p.batch_id, p.webhook_url)
        webhook = domain.batch_completed(
            event.id, batch_id=p.batch_id, total=p.total_candidates, matched=p.matched_candidates,
            failed=p.failed_candidates,
            completed_at=p.complete_time.ToDatetime(tzinfo=dt.UTC) if p.HasField("complete_time") else None,
            public_url=public_url)
        await fan_out(conn, domain.NewDelivery(event.id, p.account_id, webhook, _batch_uuid(p.batch_id)))

    async def on_failed(conn: Conn, event: Event[ingest_events.BatchFailed]) -> None:
        p = event.payload
        await register_batch_url(conn, p.account_id, p.batch_id, p.webhook_url)
        webhook = domain.batch_failed(
            event.id, batch_id=p.batch_id,
            completed_at=p.complete_time.ToDatetime(tzinfo=dt.UTC) if p.HasField("complete_time") else None,
            public_url=public_url)
        await fan_out(conn, domain.NewDelivery(event.id, p.account_id, webhook, _batch_uuid(p.batch_id)))

    async def on_matched(conn: Conn, event: Event[matcher_events.CandidateMatched]) -> None:
        p = event.payload
        webhook = domain.candidate_matched(event.id, candidate_id=p.candidate_id, batch_id=p.batch_id,
                                           score=p.overall_score, verdict=p.verdict)
        await fan_out(conn, domain.NewDelivery(event.id, p.account_id, webhook, _batch_uuid(p.batch_id)))

    async def on_credits_low(conn: Conn, event: Event[billing_events.CreditsLow]) -> None:
        p = event.payload
        webhook = domain.credits_low(event.id, account_id=p.account_id, available=p.available,
                                     threshold=p.threshold)
        await fan_out(conn, domain.NewDelivery(event.id, p.account_id, webhook))

    return [
        Subscription(BATCH_CREATED, ingest_events.BatchCreated, on_created),
        Subscription(BATCH_COMPLETED, ingest_events.BatchCompleted, on_completed),
        Subscription(BATCH_FAILED, ingest_events.BatchFailed, on_failed),
        Subscription(CANDIDATE_MATCHED, matcher_events.CandidateMatched, on_matched),
        Subscription(CREDITS_LOW, billing_events.CreditsLow, on_credits_low),
    ]
