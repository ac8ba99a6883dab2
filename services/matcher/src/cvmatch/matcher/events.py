"""What the matcher publishes and consumes, in one registry.

Publishes (through the outbox, in the transaction that stores the outcome; ids, scores and reasons only,
never CV text):
- `matcher.candidate.matched` (CandidateMatched): a candidate's result is stored.
- `matcher.candidate.failed` (CandidateMatchFailed): a candidate cannot be scored; `reason` is one of
  `domain.FAILURE_REASONS`.
Each outcome event's id is derived from the candidate id, so even a second writer could not publish a
second distinct event for the same candidate (the outbox and JetStream deduplicate on it).

Consumes (durable consumers named `matcher__<subject>`, shared by every replica, applied once per event id):
- `ingest.candidate.ingested` (CandidateIngested): fetch the texts from ingest, score, store, publish.
- `ingest.candidate.failed` (CandidateFailed): record the file's failure so batch statistics count it.
"""

from __future__ import annotations

import uuid
from typing import Any

from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events

CONSUMER = "matcher"

CANDIDATE_MATCHED = "matcher.candidate.matched"
CANDIDATE_FAILED = "matcher.candidate.failed"

CANDIDATE_INGESTED = "ingest.candidate.ingested"
INGEST_CANDIDATE_FAILED = "ingest.candidate.failed"

PUBLISHES: dict[str, type[Any]] = {
    CANDIDATE_MATCHED: matcher_events.CandidateMatched,
    CANDIDATE_FAILED: matcher_events.CandidateMatchFailed,
}
CONSUMES: dict[str, type[Any]] = {
    CANDIDATE_INGESTED: ingest_events.CandidateIngested,
    INGEST_CANDIDATE_FAILED: ingest_events.CandidateFailed,
}

# A fixed namespace: the event id of a candidate's outcome is the same in every process and run.
_OUTCOME_NAMESPACE = uuid.UUID("5b0c3c1e-6f43-4d0a-9a57-3c6f0f1d2b7a")


def outcome_event_id(subject: str, candidate_id: str) -> str:
    """The one event id a candidate's outcome on ``subject`` can have."""
    return str(uuid.uuid5(_OUTCOME_NAMESPACE, f"{subject}:{candidate_id}"))


def candidate_matched(
    candidate_id: str, batch_id: str, account_id: int, overall_score: float, verdict: str
) -> matcher_events.CandidateMatched:
    """The payload of `matcher.candidate.matched`."""
    return matcher_events.CandidateMatched(
        candidate_id=candidate_id,
        batch_id=batch_id,
        account_id=account_id,
        overall_score=overall_score,
        verdict=verdict,
    )


def candidate_failed(
    candidate_id: str, batch_id: str, account_id: int, reason: str, message: str
) -> matcher_events.CandidateMatchFailed:
    """The payload of `matcher.candidate.failed` (the message names the problem, never quotes the CV)."""
    return matcher_events.CandidateMatchFailed(
        candidate_id=candidate_id, batch_id=batch_id, account_id=account_id, reason=reason, message=message
    )
