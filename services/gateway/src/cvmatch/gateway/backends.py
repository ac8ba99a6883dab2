"""Calls to the internal services on behalf of the public endpoints: submit to ingest, read batches and
results back. Errors of those services propagate as `grpc.aio.AioRpcError`; the server interceptor
rebuilds them with `from_downstream`, so their status and envelope reach the client intact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import ingest_service_pb2 as ingest
from cvmatch.api.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from cvmatch.api.matcher.v1 import match_result_pb2
from cvmatch.api.matcher.v1 import matcher_service_pb2 as matcher
from cvmatch.api.matcher.v1 import matcher_service_pb2_grpc as matcher_grpc
from cvmatch.api.notifier.v1 import notifier_service_pb2 as notifier
from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc
from cvmatch.gateway.uploads import UploadedFile
from cvmatch.platform import errors

Outcome = batch_pb2.CandidateOutcome
# Outcomes that mean "this file produced no result": they are listed after the scored candidates.
FAILED_OUTCOMES = frozenset({
    Outcome.CANDIDATE_OUTCOME_INVALID_FILE_CONTENT, Outcome.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE,
    Outcome.CANDIDATE_OUTCOME_FILE_TOO_LARGE, Outcome.CANDIDATE_OUTCOME_PDF_ENCRYPTED,
    Outcome.CANDIDATE_OUTCOME_NO_EXTRACTABLE_TEXT, Outcome.CANDIDATE_OUTCOME_LIMITS_EXCEEDED,
    Outcome.CANDIDATE_OUTCOME_PARSE_ERROR, Outcome.CANDIDATE_OUTCOME_MATCH_FAILED,
    Outcome.CANDIDATE_OUTCOME_SOURCE_ERROR,
})
SUBMIT_TIMEOUT_SECONDS = 300.0
READ_TIMEOUT_SECONDS = 30.0
CANDIDATE_PAGE = 1000


def outcome_name(outcome: int) -> str:
    """`CANDIDATE_OUTCOME_PDF_ENCRYPTED` -> `pdf_encrypted` (the public per-file outcome)."""
    return Outcome.Name(outcome).removeprefix("CANDIDATE_OUTCOME_").lower()  # type: ignore[arg-type]


@dataclass(frozen=True)
class ResultsPage:
    """One page of a batch's answers: scored results by score, then the files that failed."""

    job_title: str
    job_summary: str
    stats: match_result_pb2.SummaryStats
    results: Sequence[match_result_pb2.MatchResult]
    failures: Sequence[batch_pb2.Candidate]
    total_results: int


class Backends:
    """Stubs of ingest, matcher and notifier, and the composite reads the endpoints share."""

    def __init__(self, ingest_channel: grpc.aio.Channel, matcher_channel: grpc.aio.Channel,
                 notifier_channel: grpc.aio.Channel) -> None:
        self.ingest = ingest_grpc.IngestServiceStub(ingest_channel)
        self.matcher = matcher_grpc.MatcherServiceStub(matcher_channel)
        self.notifier = notifier_grpc.NotifierServiceStub(notifier_channel)

    async def submit(self, header: ingest.BatchHeader,
                     files: Sequence[tuple[str, UploadedFile]]) -> ingest.CreateBatchResponse:
        """Streams the header, then every file as chunks under its canonical part name, to ingest."""

        async def requests() -> AsyncIterator[ingest.CreateBatchRequest]:
            yield ingest.CreateBatchRequest(header=header)
            for part, f in files:
                previous: bytes | None = None
                # One chunk of look-ahead so the last one carries `last=True`.
                for data in f.chunks():
                    if previous is not None:
                        yield ingest.CreateBatchRequest(chunk=ingest.FileChunk(
                            part=part, filename=f.filename, content_type=f.content_type, data=previous))
                    previous = data
                yield ingest.CreateBatchRequest(chunk=ingest.FileChunk(
                    part=part, filename=f.filename, content_type=f.content_type, data=previous or b"",
                    last=True))

        resp: ingest.CreateBatchResponse = await self.ingest.CreateBatch(requests(), timeout=SUBMIT_TIMEOUT_SECONDS)
        return resp

    async def validate_webhook_url(self, url: str) -> None:
        """Refuses http:// and private destinations (notifier owns the egress rules)."""
        await self.notifier.ValidateUrl(notifier.ValidateUrlRequest(url=url), timeout=10.0)

    async def batch(self, batch_id: str, account_id: int) -> batch_pb2.Batch:
        """The account's batch, or 404 (a batch of another account is not found either)."""
        if not batch_id.strip():
            raise errors.invalid_input("The batch id is required", "batch_id")
        resp: ingest.GetBatchResponse = await self.ingest.GetBatch(
            ingest.GetBatchRequest(batch_id=batch_id, account_id=account_id), timeout=READ_TIMEOUT_SECONDS)
        if not resp.batch.batch_id:
            raise errors.not_found(f"Batch '{batch_id}' not found")
        return resp.batch

    async def candidates(self, batch: batch_pb2.Batch) -> list[batch_pb2.Candidate]:
        """Every candidate of the batch in submission order (paged through ingest)."""
        out: list[batch_pb2.Candidate] = []
        skip = 0
        while True:
            resp: ingest.ListCandidatesResponse = await self.ingest.ListCandidates(
                ingest.ListCandidatesRequest(batch_id=batch.batch_id, account_id=batch.account_id, skip=skip,
                                             limit=CANDIDATE_PAGE), timeout=READ_TIMEOUT_SECONDS)
            out.extend(resp.candidates)
            skip += len(resp.candidates)
            if not resp.candidates or skip >= resp.total:
                return out

    async def failures(self, batch: batch_pb2.Batch) -> list[batch_pb2.Candidate]:
        """The candidates of the batch that produced no result, in their submission order."""
        if batch.failed_candidates <= 0:
            return []
        return [c for c in await self.candidates(batch) if c.outcome in FAILED_OUTCOMES]

    async def results(self, batch: batch_pb2.Batch, skip: int, limit: int) -> ResultsPage:
        """Results `skip .. skip+limit` of the batch: scored ones by score, then failed files."""
        try:
            res: matcher.ListResultsResponse = await self.matcher.ListResults(
                matcher.ListResultsRequest(batch_id=batch.batch_id, skip=skip, limit=limit),
                timeout=READ_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            # No result stored yet: the matcher does not know the batch.
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            res = matcher.ListResultsResponse()
        failures: list[batch_pb2.Candidate] = []
        room = limit - len(res.results)
        if room > 0 and batch.failed_candidates > 0:
            first_failure = max(0, skip - res.total_results)
            failures = (await self.failures(batch))[first_failure:first_failure + room]
        stats = match_result_pb2.SummaryStats()
        stats.CopyFrom(res.summary_stats)
        # ingest is the source of truth for counts; the matcher only knows what it scored.
        stats.total_candidates = batch.total_candidates
        stats.successful_matches = res.total_results
        stats.error_count = batch.failed_candidates
        return ResultsPage(res.job_title, res.job_summary, stats, list(res.results), failures, res.total_results)
