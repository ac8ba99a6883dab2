"""Internal messages (ingest batches, matcher results) shaped as each seed document shows them."""

from __future__ import annotations

from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.matcher.v1 import match_result_pb2
from cvmatch.gateway.backends import ResultsPage, outcome_name
from cvmatch.gateway.respond import nullable, rfc3339

_STATUS = {
    batch_pb2.BATCH_STATUS_PENDING: "pending",
    batch_pb2.BATCH_STATUS_PROCESSING: "processing",
    batch_pb2.BATCH_STATUS_COMPLETED: "completed",
    batch_pb2.BATCH_STATUS_FAILED: "failed",
}
TERMINAL = frozenset({"completed", "failed"})


def status_of(batch: batch_pb2.Batch) -> str:
    """The seeds' lowercase status value."""
    return _STATUS.get(batch.status, "pending")


def batch_job(batch: batch_pb2.Batch) -> resources_pb2.BatchJob:
    """SkillMatchIQ's batch document (submit and status)."""
    return resources_pb2.BatchJob(
        batch_job_id=batch.batch_id, user_id=batch.account_id, status=status_of(batch),
        total_candidates=batch.total_candidates, processed_candidates=batch.processed_candidates,
        created_at=rfc3339(batch.create_time),
        updated_at=rfc3339(batch.update_time) or rfc3339(batch.create_time),
        completed_at=nullable(rfc3339(batch.complete_time)),
        error_message=nullable(batch.error_message),
    )


def progress_percentage(batch: batch_pb2.Batch) -> float:
    """Share of candidates with an outcome, 0-100 with one decimal; 100 once completed."""
    if status_of(batch) == "completed":
        return 100.0
    if batch.total_candidates <= 0:
        return 0.0
    return round(min(100.0, 100.0 * batch.processed_candidates / batch.total_candidates), 1)


def processed_item(result: match_result_pb2.MatchResult) -> resources_pb2.ProcessedItem:
    """One scored candidate in `processed_items` / `results`."""
    return resources_pb2.ProcessedItem(
        candidate_id_internal=result.candidate_id, original_filename=result.original_filename,
        filename=result.original_filename, match_score=result.match_score,
        match_results_summary=result.match_results_summary, error=nullable(None), verdict=result.verdict,
        recommendation=result.recommendation, executive_summary=result.executive_summary,
    )


def _empty_summary() -> match_result_pb2.MatchResultsSummary:
    return match_result_pb2.MatchResultsSummary(
        skills=match_result_pb2.SkillsSummary(), roles=match_result_pb2.ItemsSummary(),
        qualifications=match_result_pb2.ItemsSummary(), sectors=match_result_pb2.ItemsSummary())


def failed_item(candidate: batch_pb2.Candidate) -> resources_pb2.ProcessedItem:
    """A file that produced no result: zero scores (so clients indexing the scores keep working) and `error`."""
    return resources_pb2.ProcessedItem(
        candidate_id_internal=candidate.candidate_id, original_filename=candidate.original_filename,
        filename=candidate.original_filename, match_score=match_result_pb2.MatchScore(),
        match_results_summary=_empty_summary(), error=nullable(outcome_name(candidate.outcome)),
        verdict="", recommendation="", executive_summary=candidate.outcome_message,
    )


def items(page: ResultsPage) -> list[resources_pb2.ProcessedItem]:
    """A results page as the seeds list it: scored candidates by score, then the files that failed."""
    return [processed_item(r) for r in page.results] + [failed_item(c) for c in page.failures]


def cv_result(result: match_result_pb2.MatchResult) -> resources_pb2.CvResult:
    """One scored CV in the CV Matching API's `results`."""
    return resources_pb2.CvResult(
        cv_filename=result.original_filename, match_score=result.integer_score,
        executive_summary=result.executive_summary, strengths=list(result.strengths), gaps=list(result.gaps),
        recommendation=result.recommendation, verdict=result.verdict, error=nullable(None))


def failed_cv(candidate: batch_pb2.Candidate) -> resources_pb2.CvResult:
    """A CV that produced no result in the CV Matching API's `results`."""
    return resources_pb2.CvResult(
        cv_filename=candidate.original_filename, match_score=0,
        executive_summary=candidate.outcome_message, recommendation="Not recommended", verdict="NOT_SUITABLE",
        error=nullable(outcome_name(candidate.outcome)))
