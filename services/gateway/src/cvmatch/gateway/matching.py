"""CV Matching API (`/api/match*`) and CVDeepMatch (`/api/v1/cvdeepmatch/*`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2

from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.matcher.v1 import match_result_pb2
from cvmatch.gateway import forms, views
from cvmatch.gateway.backends import Backends, outcome_name
from cvmatch.gateway.respond import nullable, rfc3339, send_headers
from cvmatch.gateway.submitting import Context, Submitter, header_value
from cvmatch.platform.errors import DomainError
from cvmatch.platform.interceptors import from_downstream
from cvmatch.platform.logging import request_id_var

# A match job's results come back whole (the CV Matching API has no pagination): read in pages of this size.
MATCH_RESULTS_PAGE = 1000
DEEP_MATCH_SCOPE = "cvdeepmatch"
# Above this many CVs, progress does not list candidates to split pending from processing.
PROGRESS_DETAIL_LIMIT = 1000


class MatchJobsService(gw_grpc.MatchJobsServiceServicer):
    """`POST /api/match`, `GET /api/match/{job_id}/progress`, `GET /api/match/{job_id}`."""

    def __init__(self, submitter: Submitter) -> None:
        self._sub = submitter
        self._auth = submitter.auth
        self._backends = submitter.backends

    async def CreateMatchJob(self, request_iterator: AsyncIterator[httpbody_pb2.HttpBody],
                             context: Context) -> gw.CreateMatchJobResponse:
        caller = await self._auth.authorize(context, "match:execute")
        form = await self._sub.read(request_iterator)
        try:
            sub = forms.match_submission(form, caller.account_id, request_id_var.get(),
                                         header_value(context, "idempotency-key"), caller.max_cvs_per_job)
            resp = await self._sub.send(sub)
        finally:
            form.close()
        await send_headers(context, caller)
        skipped = [resources_pb2.SkippedCv(filename=f.filename, reason=reason, message=message)
                   for f, reason, message in sub.skipped]
        skipped += [resources_pb2.SkippedCv(filename=s.filename, reason=outcome_name(s.outcome), message=s.reason)
                    for s in resp.skipped_files]
        job_id = resp.batch.batch_id
        return gw.CreateMatchJobResponse(
            job_id=job_id, status=views.status_of(resp.batch),
            # Files refused at submission are stored as candidates too, but are not CVs being matched.
            cv_count=max(0, resp.batch.total_candidates - len(resp.skipped_files)),
            message=f"Job created. Poll /api/match/{job_id} for results.", skipped_cvs=skipped)

    async def GetMatchJobProgress(self, request: gw.GetMatchJobProgressRequest,
                                  context: Context) -> gw.GetMatchJobProgressResponse:
        caller = await self._auth.authorize(context, "match:read")
        batch = await self._backends.batch(request.job_id, caller.account_id)
        total = batch.total_candidates
        done = min(total, batch.processed_candidates)
        waiting = max(0, total - done)
        pending, processing = waiting, 0
        if waiting and views.status_of(batch) == "processing" and total <= PROGRESS_DETAIL_LIMIT:
            # Split the unfinished CVs: PENDING awaits extraction, INGESTED is with the matcher.
            outcomes = [c.outcome for c in await self._backends.candidates(batch)]
            processing = min(waiting, sum(o == batch_pb2.CANDIDATE_OUTCOME_INGESTED for o in outcomes))
            pending = waiting - processing
        await send_headers(context, caller)
        return gw.GetMatchJobProgressResponse(
            status=views.status_of(batch), total=total, completed=done, pending=pending,
            processing=processing, failed=batch.failed_candidates)

    async def GetMatchJob(self, request: gw.GetMatchJobRequest, context: Context) -> gw.GetMatchJobResponse:
        caller = await self._auth.authorize(context, "match:read")
        batch = await self._backends.batch(request.job_id, caller.account_id)
        results, failures = await all_results(self._backends, batch)
        await send_headers(context, caller)
        return gw.GetMatchJobResponse(
            job_id=batch.batch_id, status=views.status_of(batch),
            results=[views.cv_result(r) for r in results] + [views.failed_cv(c) for c in failures])


async def all_results(backends: Backends, batch: batch_pb2.Batch, page_size: int = MATCH_RESULTS_PAGE
                      ) -> tuple[list[match_result_pb2.MatchResult], list[batch_pb2.Candidate]]:
    """Every result of the batch (by score), then every file that failed, read page by page."""
    results: list[match_result_pb2.MatchResult] = []
    failures: list[batch_pb2.Candidate] = []
    skip = 0
    while True:
        page = await backends.results(batch, skip, page_size)
        results.extend(page.results)
        failures.extend(page.failures)
        got = len(page.results) + len(page.failures)
        skip += got
        if got < page_size:
            return results, failures


class DeepMatchService(gw_grpc.DeepMatchServiceServicer):
    """`POST /api/v1/cvdeepmatch/submit` and `GET /api/v1/cvdeepmatch/{id}`."""

    def __init__(self, submitter: Submitter) -> None:
        self._sub = submitter
        self._auth = submitter.auth
        self._backends = submitter.backends

    async def SubmitDeepMatch(self, request_iterator: AsyncIterator[httpbody_pb2.HttpBody],
                              context: Context) -> gw.SubmitDeepMatchResponse:
        caller = await self._auth.authorize(context, DEEP_MATCH_SCOPE)
        form = await self._sub.read(request_iterator)
        try:
            sub = forms.deep_match_submission(form, caller.account_id, request_id_var.get(),
                                              header_value(context, "idempotency-key"))
            forms.check_pdf_magic(sub)
            await self._sub.check_webhook(sub.webhook_url)
            try:
                resp = await self._sub.submit(sub)
            except grpc.aio.AioRpcError as exc:
                raise _pipeline_error(exc) from None
        finally:
            form.close()
        await send_headers(context, caller, 200 if resp.idempotent_replay else 202)
        return gw.SubmitDeepMatchResponse(id=resp.batch.batch_id, status=views.status_of(resp.batch),
                                          idempotent_replay=resp.idempotent_replay)

    async def GetDeepMatch(self, request: gw.GetDeepMatchRequest, context: Context) -> gw.GetDeepMatchResponse:
        caller = await self._auth.authorize(context, DEEP_MATCH_SCOPE)
        batch = await self._backends.batch(request.id, caller.account_id)
        status = views.status_of(batch)
        page = await self._backends.results(batch, 0, 1) if status in views.TERMINAL else None
        await send_headers(context, caller)
        out = gw.GetDeepMatchResponse(id=batch.batch_id, status=status, created_at=rfc3339(batch.create_time),
                                      completed_at=nullable(rfc3339(batch.complete_time)),
                                      error=nullable(batch.error_message))
        if page is not None and page.results:
            r = page.results[0]
            out.result.CopyFrom(gw.DeepMatchResult(
                match_score=r.match_score, match_results_summary=r.match_results_summary, verdict=r.verdict,
                recommendation=r.recommendation, score=r.integer_score, executive_summary=r.executive_summary,
                strengths=list(r.strengths), gaps=list(r.gaps), knocked_out=r.knocked_out))
        elif page is not None and page.failures:
            failure = page.failures[0]
            out.error.CopyFrom(nullable(outcome_name(failure.outcome)))
            if status == "completed":
                out.status = "failed"
        return out


def _pipeline_error(exc: grpc.aio.AioRpcError) -> DomainError:
    """CVDeepMatch's 502 when the matching pipeline could not be reached (safe to retry with the same key).

    An internal error inside the pipeline stays a 500 `INTERNAL`: the seed keeps 502 for the retry-safe
    case, and retrying a request that broke the service would not help.
    """
    mapped = from_downstream(exc)
    if mapped.reason == "UNAVAILABLE":
        return DomainError("The matching pipeline failed to start; resubmit with the same idempotency_key",
                           "STEP_FUNCTIONS_FAILED", grpc.StatusCode.UNAVAILABLE, 502)
    return mapped
