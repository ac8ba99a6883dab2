"""What ingest publishes and consumes, in one registry.

Publishes (through the outbox, in the transaction that changes the state they describe):
- `ingest.batch.created` (BatchCreated): a batch, its candidates and its spool are durable.
- `ingest.candidate.ingested` (CandidateIngested): a candidate's text is stored (ids and hashes, never text).
- `ingest.candidate.failed` (CandidateFailed): a file could not be used; it is never matched nor charged.
- `ingest.batch.completed` (BatchCompleted) / `ingest.batch.failed` (BatchFailed): every candidate has an
  outcome (failed when not one could be used). Billing releases the unused reservation on either.

Consumes (durable consumers named `ingest__<subject>`, applied exactly once per event id):
- `matcher.candidate.matched` (CandidateMatched): the candidate is MATCHED.
- `matcher.candidate.failed` (CandidateMatchFailed): the candidate is MATCH_FAILED.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.ingest.domain import ApiFlavor, Batch, CandidateState, InputType
from cvmatch.platform.consumer import Subscription
from cvmatch.platform.db import DbConnection
from cvmatch.platform.events import Event
from cvmatch.platform.timestamps import timestamp

if TYPE_CHECKING:
    from cvmatch.ingest.repository import Repository

CONSUMER = "ingest"

BATCH_CREATED = "ingest.batch.created"
CANDIDATE_INGESTED = "ingest.candidate.ingested"
CANDIDATE_FAILED = "ingest.candidate.failed"
BATCH_COMPLETED = "ingest.batch.completed"
BATCH_FAILED = "ingest.batch.failed"

CANDIDATE_MATCHED = "matcher.candidate.matched"
CANDIDATE_MATCH_FAILED = "matcher.candidate.failed"

PUBLISHES: dict[str, type[Any]] = {
    BATCH_CREATED: ingest_events.BatchCreated,
    CANDIDATE_INGESTED: ingest_events.CandidateIngested,
    CANDIDATE_FAILED: ingest_events.CandidateFailed,
    BATCH_COMPLETED: ingest_events.BatchCompleted,
    BATCH_FAILED: ingest_events.BatchFailed,
}

INPUT_TYPE_TO_PROTO: dict[InputType, int] = {
    InputType.ZIP_FILE: batch_pb2.INPUT_TYPE_ZIP_FILE,
    InputType.CSV_FILE: batch_pb2.INPUT_TYPE_CSV_FILE,
    InputType.GOOGLE_DRIVE: batch_pb2.INPUT_TYPE_GOOGLE_DRIVE,
    InputType.AWS_S3: batch_pb2.INPUT_TYPE_AWS_S3,
    InputType.DATABASE: batch_pb2.INPUT_TYPE_DATABASE,
    InputType.FILES: batch_pb2.INPUT_TYPE_FILES,
    InputType.SINGLE_PDF: batch_pb2.INPUT_TYPE_SINGLE_PDF,
    InputType.CSV_TEXT: batch_pb2.INPUT_TYPE_CSV_TEXT,
}
API_FLAVOR_TO_PROTO: dict[ApiFlavor, int] = {
    ApiFlavor.UNSPECIFIED: batch_pb2.API_FLAVOR_UNSPECIFIED,
    ApiFlavor.SKILLMATCHIQ: batch_pb2.API_FLAVOR_SKILLMATCHIQ,
    ApiFlavor.CV_MATCHING: batch_pb2.API_FLAVOR_CV_MATCHING,
    ApiFlavor.CVDEEPMATCH: batch_pb2.API_FLAVOR_CVDEEPMATCH,
    ApiFlavor.SYNC: batch_pb2.API_FLAVOR_SYNC,
}
STATE_TO_PROTO: dict[CandidateState, int] = {
    CandidateState.PENDING: batch_pb2.CANDIDATE_OUTCOME_PENDING,
    CandidateState.INGESTED: batch_pb2.CANDIDATE_OUTCOME_INGESTED,
    CandidateState.MATCHED: batch_pb2.CANDIDATE_OUTCOME_MATCHED,
    CandidateState.MATCH_FAILED: batch_pb2.CANDIDATE_OUTCOME_MATCH_FAILED,
    CandidateState.INVALID_FILE_CONTENT: batch_pb2.CANDIDATE_OUTCOME_INVALID_FILE_CONTENT,
    CandidateState.UNSUPPORTED_TYPE: batch_pb2.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE,
    CandidateState.FILE_TOO_LARGE: batch_pb2.CANDIDATE_OUTCOME_FILE_TOO_LARGE,
    CandidateState.PDF_ENCRYPTED: batch_pb2.CANDIDATE_OUTCOME_PDF_ENCRYPTED,
    CandidateState.NO_EXTRACTABLE_TEXT: batch_pb2.CANDIDATE_OUTCOME_NO_EXTRACTABLE_TEXT,
    CandidateState.LIMITS_EXCEEDED: batch_pb2.CANDIDATE_OUTCOME_LIMITS_EXCEEDED,
    CandidateState.PARSE_ERROR: batch_pb2.CANDIDATE_OUTCOME_PARSE_ERROR,
    CandidateState.ALREADY_MATCHED: batch_pb2.CANDIDATE_OUTCOME_ALREADY_MATCHED,
    CandidateState.SOURCE_ERROR: batch_pb2.CANDIDATE_OUTCOME_SOURCE_ERROR,
}


def batch_created(b: Batch) -> ingest_events.BatchCreated:
    """The payload of `ingest.batch.created`."""
    return ingest_events.BatchCreated(
        batch_id=b.batch_id, account_id=b.account_id, total_candidates=b.total_candidates,
        input_type=INPUT_TYPE_TO_PROTO[b.input_type],  # type: ignore[arg-type]
        job_id=b.job_id, webhook_url=b.webhook_url, create_time=timestamp(b.created_at),
        api_flavor=API_FLAVOR_TO_PROTO[b.api_flavor])  # type: ignore[arg-type]


def candidate_ingested(candidate_id: str, batch_id: str, account_id: int, content_sha256: str,
                       job_description_sha256: str, job_id: str,
                       batch_created_at: dt.datetime) -> ingest_events.CandidateIngested:
    """The payload of `ingest.candidate.ingested`: ids, hashes and the batch's submission time; the matcher
    fetches the text over gRPC."""
    return ingest_events.CandidateIngested(
        candidate_id=candidate_id, batch_id=batch_id, account_id=account_id, content_sha256=content_sha256,
        job_description_sha256=job_description_sha256, job_id=job_id,
        batch_create_time=timestamp(batch_created_at))


def candidate_failed(candidate_id: str, batch_id: str, account_id: int, state: CandidateState,
                     message: str) -> ingest_events.CandidateFailed:
    """The payload of `ingest.candidate.failed` (the message names the outcome, never the content)."""
    return ingest_events.CandidateFailed(
        candidate_id=candidate_id, batch_id=batch_id, account_id=account_id,
        outcome=STATE_TO_PROTO[state], message=message)  # type: ignore[arg-type]


def batch_completed(b: Batch, matched: int) -> ingest_events.BatchCompleted:
    """The payload of `ingest.batch.completed`."""
    return ingest_events.BatchCompleted(
        batch_id=b.batch_id, account_id=b.account_id, total_candidates=b.total_candidates,
        matched_candidates=matched, failed_candidates=b.failed_candidates,
        complete_time=timestamp(b.completed_at), webhook_url=b.webhook_url)


def batch_failed(b: Batch) -> ingest_events.BatchFailed:
    """The payload of `ingest.batch.failed`."""
    return ingest_events.BatchFailed(
        batch_id=b.batch_id, account_id=b.account_id, error_message=b.error_message,
        complete_time=timestamp(b.completed_at), webhook_url=b.webhook_url)


def subscriptions(repo: Repository) -> list[Subscription[Any]]:
    """The consumers ingest runs, bound to its repository."""

    async def on_matched(conn: DbConnection, event: Event[matcher_events.CandidateMatched]) -> None:
        p = event.payload
        await repo.record_match(conn, p.candidate_id, CandidateState.MATCHED, "")

    async def on_match_failed(conn: DbConnection, event: Event[matcher_events.CandidateMatchFailed]) -> None:
        p = event.payload
        await repo.record_match(conn, p.candidate_id, CandidateState.MATCH_FAILED, p.reason or "match_failed")

    return [
        Subscription(CANDIDATE_MATCHED, matcher_events.CandidateMatched, on_matched),
        Subscription(CANDIDATE_MATCH_FAILED, matcher_events.CandidateMatchFailed, on_match_failed),
    ]
