"""What billing publishes and consumes, in one registry.

Publishes (through the outbox, in the transaction that changes the ledger):
- `billing.credits.low` (CreditsLow): an account's available credits dropped below the threshold.
- `billing.batch.settled` (BatchSettled): a batch's reservation is fully captured or released.

Consumes (durable consumers named `billing__<subject>`, applied exactly once per event id):
- `matcher.candidate.matched` (CandidateMatched): capture one credit for the candidate (also when it
  arrives after the batch's end: a result is charged exactly once).
- `ingest.batch.completed` (BatchCompleted): release what is held except one credit per matched
  candidate not captured yet (those captures are on the other stream and may still be in flight).
- `ingest.batch.failed` (BatchFailed): release everything not captured.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cvmatch.api.billing.v1 import events_pb2 as billing_events
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.platform.consumer import Subscription
from cvmatch.platform.errors import DomainError
from cvmatch.platform.events import Event

if TYPE_CHECKING:
    from cvmatch.billing.repository import Conn, Repository

log = logging.getLogger(__name__)

CONSUMER = "billing"

CREDITS_LOW = "billing.credits.low"
BATCH_SETTLED = "billing.batch.settled"

CANDIDATE_MATCHED = "matcher.candidate.matched"
BATCH_COMPLETED = "ingest.batch.completed"
BATCH_FAILED = "ingest.batch.failed"

PUBLISHES: dict[str, type[Any]] = {
    CREDITS_LOW: billing_events.CreditsLow,
    BATCH_SETTLED: billing_events.BatchSettled,
}


def credits_low(account_id: int, available: int, threshold: int) -> billing_events.CreditsLow:
    """The payload of `billing.credits.low`."""
    return billing_events.CreditsLow(account_id=account_id, available=available, threshold=threshold)


def batch_settled(account_id: int, batch_id: str, reserved: int, captured: int,
                  released: int) -> billing_events.BatchSettled:
    """The payload of `billing.batch.settled`."""
    return billing_events.BatchSettled(account_id=account_id, batch_id=batch_id, reserved=reserved,
                                       captured=captured, released=released)


def subscriptions(repo: Repository) -> list[Subscription[Any]]:
    """The consumers billing runs, bound to its repository."""

    async def on_matched(conn: Conn, event: Event[matcher_events.CandidateMatched]) -> None:
        # The event exists only once a result is stored: this is the one path to a capture.
        p = event.payload
        await repo.capture(p.account_id, p.batch_id, p.candidate_id, conn=conn)

    async def settle(conn: Conn, account_id: int, batch_id: str, matched: int | None) -> None:
        try:
            await repo.release(account_id, batch_id, matched, conn=conn)
        except DomainError as exc:
            # An unknown account will not appear on redelivery: log it rather than dead-letter it.
            if exc.reason != "NOT_FOUND":
                raise
            log.warning("batch end for an unknown account ignored", extra={"batch_id": batch_id})

    async def on_completed(conn: Conn, event: Event[ingest_events.BatchCompleted]) -> None:
        p = event.payload
        await settle(conn, p.account_id, p.batch_id, max(p.matched_candidates, 0))

    async def on_failed(conn: Conn, event: Event[ingest_events.BatchFailed]) -> None:
        await settle(conn, event.payload.account_id, event.payload.batch_id, None)

    return [
        Subscription(CANDIDATE_MATCHED, matcher_events.CandidateMatched, on_matched),
        Subscription(BATCH_COMPLETED, ingest_events.BatchCompleted, on_completed),
        Subscription(BATCH_FAILED, ingest_events.BatchFailed, on_failed),
    ]
