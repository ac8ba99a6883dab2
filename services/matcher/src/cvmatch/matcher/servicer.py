"""gRPC surface of the matcher service: proto <-> domain only."""

from __future__ import annotations

import dataclasses
import json

import grpc

from cvmatch.api.matcher.v1 import matcher_service_pb2 as pb
from cvmatch.api.matcher.v1 import matcher_service_pb2_grpc
from cvmatch.matcher import convert
from cvmatch.matcher.matching import Matcher, TextCandidate
from cvmatch.matcher.repository import Failure


def _error(failure: Failure) -> pb.CandidateError:
    return pb.CandidateError(
        candidate_id=failure.candidate_id,
        filename=failure.original_filename,
        reason=failure.reason,
        message=failure.message,
    )


class MatcherService(matcher_service_pb2_grpc.MatcherServiceServicer):
    """Scores, parses and serves stored results; errors are raised as domain errors and mapped once."""

    def __init__(self, matcher: Matcher) -> None:
        self._m = matcher

    async def ScoreCandidates(
        self, request: pb.ScoreCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreCandidatesResponse:
        candidates = [TextCandidate(c.candidate_id, c.filename, c.text) for c in request.candidates]
        out = await self._m.score_texts(request.job_description_text, candidates, request.requirements_json)
        return pb.ScoreCandidatesResponse(
            job_title=out.job.job_title,
            job_summary=out.job.job_summary,
            results=out.results,
            errors=[pb.CandidateError(**dataclasses.asdict(e)) for e in out.errors],
        )

    async def ListResults(
        self, request: pb.ListResultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListResultsResponse:
        page = await self._m.ranking(request.batch_id, request.skip, request.limit)
        return pb.ListResultsResponse(
            job_title=page.job_title,
            job_summary=page.job_summary,
            summary_stats=convert.summary_stats(page.stats),
            results=page.results,
            total_results=page.stats.successful_matches,
            errors=[_error(f) for f in page.failures],
        )

    async def GetResult(self, request: pb.GetResultRequest, context: grpc.aio.ServicerContext) -> pb.GetResultResponse:
        found = await self._m.result(request.candidate_id)
        if isinstance(found, Failure):
            return pb.GetResultResponse(error=_error(found))
        return pb.GetResultResponse(result=found)

    async def ParseJob(self, request: pb.ParseJobRequest, context: grpc.aio.ServicerContext) -> pb.ParseJobResponse:
        parsed = await self._m.parse_job(request.job_description_text)
        job = parsed.profile
        return pb.ParseJobResponse(
            job_title=job.job_title,
            job_summary=job.job_summary,
            sha256=parsed.sha256,
            required_skills=[s.name for s in job.skills if s.required],
            preferred_skills=[s.name for s in job.skills if not s.required],
            minimum_years=job.min_years or 0.0,
            profile_json=json.dumps(job.to_dict(), sort_keys=True, separators=(",", ":")),
        )
