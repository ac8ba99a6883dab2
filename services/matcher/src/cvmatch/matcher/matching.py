"""The matcher's use cases: score an ingested candidate (event), score texts on request, parse a job,
and read a batch's ranking. Ties the engine (through `domain.Scorer`), the repository and ingest together.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import match_result_pb2 as pb
from cvmatch.matcher import convert, domain, errors
from cvmatch.matcher.domain import JobCache, Scorer, Unscorable
from cvmatch.matcher.engine import InvalidRequirements, JobProfile
from cvmatch.matcher.ingest_client import IngestClient, JobDescription, NotInIngest
from cvmatch.matcher.repository import BatchJob, Conn, Failure, Repository, uuid_or_none
from cvmatch.platform.events import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextCandidate:
    """A CV given as text (ScoreCandidates)."""

    candidate_id: str
    filename: str
    text: str


@dataclass(frozen=True)
class TextError:
    """Why one CV of a ScoreCandidates call has no result."""

    candidate_id: str
    filename: str
    reason: str
    message: str


@dataclass(frozen=True)
class TextScores:
    """The outcome of ScoreCandidates: the parsed job, the results (best first) and the failures."""

    job: JobProfile
    results: list[pb.MatchResult]
    errors: list[TextError]


@dataclass(frozen=True)
class ParsedJob:
    """A parsed job description and its cache key."""

    sha256: str
    profile: JobProfile


@dataclass(frozen=True)
class Ranking:
    """One page of a batch's ranking with the whole batch's statistics."""

    job_title: str
    job_summary: str
    stats: domain.SummaryStats
    results: list[pb.MatchResult]
    failures: list[Failure]


class Matcher:
    """The matcher's behaviour, independent of how it is reached (gRPC or events)."""

    def __init__(
        self,
        scorer: Scorer,
        repo: Repository,
        cache: JobCache,
        ingest: IngestClient | None,
        sync_max_candidates: int = 500,
    ) -> None:
        self.scorer = scorer
        self.repo = repo
        self.cache = cache
        self.ingest = ingest
        self.sync_max_candidates = sync_max_candidates

    # --- job descriptions -------------------------------------------------------------------------

    async def _job(self, sha256: str, text: Callable[[], Awaitable[str]]) -> JobProfile:
        """The parsed job of this hash: from memory, else from `job_profiles`, else parsed and stored."""
        version = self.scorer.version

        async def load() -> JobProfile:
            stored = await self.repo.get_job_profile(sha256, version)
            if stored is not None:
                return stored
            profile = await self.scorer.parse_job(await text())
            await self.repo.save_job_profile(sha256, version, profile)
            return profile

        return await self.cache.get((sha256, version), load)

    async def parse_job(self, text: str) -> ParsedJob:
        """ParseJob: a job description parsed once per content hash; a 400 when it has nothing to match."""
        if not text.strip():
            raise errors.invalid_input("job_description_text is required", "job_description_text")

        async def given() -> str:
            return text

        sha = domain.content_sha256(text)
        try:
            return ParsedJob(sha, await self._job(sha, given))
        except Unscorable as exc:
            raise errors.invalid_input(exc.message, "job_description_text") from None

    # --- synchronous scoring ----------------------------------------------------------------------

    async def score_texts(
        self, job_text: str, candidates: Sequence[TextCandidate], requirements_json: str
    ) -> TextScores:
        """ScoreCandidates: scores CV texts against a job text; stores no result.

        A CV that cannot be scored is reported in `errors` with a stable reason; the others still score.
        """
        if not candidates:
            raise errors.invalid_input("at least one candidate is required", "candidates")
        if len(candidates) > self.sync_max_candidates:
            raise errors.invalid_input(f"at most {self.sync_max_candidates} candidates per call", "candidates")
        try:
            requirements = domain.parse_requirements(requirements_json)
        except InvalidRequirements as exc:
            raise errors.invalid_requirements(exc) from None
        parsed = await self.parse_job(job_text)
        scored = await self.scorer.score_many(parsed.profile, [c.text for c in candidates], requirements)
        results: list[tuple[float, int, pb.MatchResult]] = []
        failures: list[TextError] = []
        for i, (cand, outcome) in enumerate(zip(candidates, scored, strict=True)):
            if outcome.result is None:
                assert outcome.failure is not None
                failures.append(
                    TextError(cand.candidate_id, cand.filename, outcome.failure.reason, outcome.failure.message)
                )
                continue
            who = convert.CandidateInfo(candidate_id=cand.candidate_id, original_filename=cand.filename)
            results.append(
                (outcome.result.overall_score, i, convert.match_result(outcome.result, who, outcome.seniority))
            )
        # Best first, ties in input order: the same request always gives the same ranking.
        results.sort(key=lambda t: (-t[0], t[1]))
        return TextScores(parsed.profile, [r for _, _, r in results], failures)

    # --- events -----------------------------------------------------------------------------------

    async def on_candidate_ingested(self, conn: Conn, event: Event[ingest_events.CandidateIngested]) -> None:
        """Scores an ingested candidate and stores the result or the failure with its event.

        Runs in the consumer's transaction: the outcome, its outbox row and the processed event id commit
        together. A candidate that already has an outcome is left alone (redelivery under another id).
        Transient problems (ingest down) raise, so the event is redelivered later.
        """
        p = event.payload
        if uuid_or_none(p.candidate_id) is None or uuid_or_none(p.batch_id) is None:
            # A producer bug: let the consumer retry and then dead-letter it rather than drop it silently.
            raise ValueError("candidate_id and batch_id must be UUIDs")
        if await self.repo.has_outcome(conn, p.candidate_id):
            log.info("candidate already has an outcome", extra={"candidate_id": p.candidate_id})
            return
        assert self.ingest is not None, "the event consumer needs an ingest client"
        ingest = self.ingest
        filename = ""
        try:
            batch = await self.repo.get_batch(p.batch_id, conn)
            fetched: JobDescription | None = None
            if batch is None:
                try:
                    fetched = await ingest.job_description(p.batch_id)
                except NotInIngest as exc:
                    raise Unscorable(domain.INVALID_JOB_DESCRIPTION, str(exc)) from None
                submitted = p.batch_create_time.ToDatetime(dt.UTC) if p.HasField("batch_create_time") else None
                batch = await self.repo.save_batch(conn, BatchJob(
                    p.batch_id,
                    p.account_id,
                    domain.content_sha256(fetched.text),
                    fetched.job_id,
                    fetched.requirements_json,
                    (submitted or dt.datetime.now(dt.UTC)).date(),
                ))

            async def job_text() -> str:
                # Only needed when neither memory nor the table has the parsed job (e.g. a new engine).
                nonlocal fetched
                if fetched is None:
                    fetched = await ingest.job_description(p.batch_id)
                return fetched.text

            try:
                requirements = domain.parse_requirements(batch.requirements_json)
            except InvalidRequirements as exc:
                raise Unscorable(domain.INVALID_REQUIREMENTS, str(exc)) from None
            job = await self._job(batch.job_sha256, job_text)
            try:
                cand = await ingest.candidate_text(p.candidate_id)
            except NotInIngest as exc:
                raise Unscorable(domain.CANDIDATE_NOT_FOUND, str(exc)) from None
            filename = cand.original_filename
            scored = await self.scorer.score(job, cand.text, requirements, batch.as_of)
            if scored.failure is not None:
                raise scored.failure
            assert scored.result is not None
        except Unscorable as exc:
            stored = await self.repo.store_failure(
                conn,
                candidate_id=p.candidate_id,
                batch_id=p.batch_id,
                account_id=p.account_id,
                stage="match",
                reason=exc.reason,
                message=exc.message,
                original_filename=filename,
                publish=True,
            )
            log.info(
                "candidate not scored",
                extra={"candidate_id": p.candidate_id, "batch_id": p.batch_id, "reason": exc.reason, "stored": stored},
            )
            return
        who = convert.CandidateInfo(p.candidate_id, p.batch_id, cand.original_filename, cand.external_id)
        message = convert.match_result(scored.result, who, scored.seniority)
        stored = await self.repo.store_result(
            conn,
            candidate_id=p.candidate_id,
            batch_id=p.batch_id,
            account_id=p.account_id,
            overall_score=scored.result.overall_score,
            verdict=scored.result.verdict,
            result=convert.serialize(message),
        )
        log.info(
            "candidate scored",
            extra={
                "candidate_id": p.candidate_id,
                "batch_id": p.batch_id,
                "overall_score": scored.result.overall_score,
                "stored": stored,
            },
        )

    async def on_ingest_failed(self, conn: Conn, event: Event[ingest_events.CandidateFailed]) -> None:
        """Records a file ingest could not use, so the batch's error count includes it (no event)."""
        p = event.payload
        if uuid_or_none(p.candidate_id) is None or uuid_or_none(p.batch_id) is None:
            raise ValueError("candidate_id and batch_id must be UUIDs")
        try:
            outcome = batch_pb2.CandidateOutcome.Name(p.outcome) if p.outcome else "CANDIDATE_OUTCOME_PARSE_ERROR"
        except ValueError:
            # An outcome added to ingest's contract after this build: still an error of the batch.
            outcome = "CANDIDATE_OUTCOME_PARSE_ERROR"
        reason = outcome.removeprefix("CANDIDATE_OUTCOME_").lower()
        await self.repo.store_failure(
            conn,
            candidate_id=p.candidate_id,
            batch_id=p.batch_id,
            account_id=p.account_id,
            stage="ingest",
            reason=reason,
            message=p.message,
            publish=False,
        )

    # --- reads ------------------------------------------------------------------------------------

    async def ranking(self, batch_id: str, skip: int, limit: int) -> Ranking:
        """ListResults: a page of the batch's results, best first, with the whole batch's statistics."""
        if not batch_id:
            raise errors.invalid_input("batch_id is required", "batch_id")
        if uuid_or_none(batch_id) is None:
            raise errors.invalid_input("batch_id must be a UUID", "batch_id")
        if skip < 0:
            raise errors.invalid_input("skip must not be negative", "skip")
        if limit < 0:
            raise errors.invalid_input("limit must not be negative", "limit")
        skip, limit = domain.page(skip, limit)
        results = [pb.MatchResult.FromString(raw) for raw in await self.repo.list_results(batch_id, skip, limit)]
        failures = await self.repo.list_failures(batch_id)
        stats = domain.summary_stats(await self.repo.batch_counts(batch_id, errors=len(failures)))
        title, summary = await self.repo.batch_job_profile(batch_id) or ("", "")
        return Ranking(title, summary, stats, results, failures)

    async def result(self, candidate_id: str) -> pb.MatchResult | Failure:
        """GetResult: the stored result, or why the candidate has none; NOT_FOUND when neither exists."""
        if not candidate_id:
            raise errors.invalid_input("candidate_id is required", "candidate_id")
        raw = await self.repo.get_result(candidate_id)
        if raw is not None:
            return pb.MatchResult.FromString(raw)
        failure = await self.repo.get_failure(candidate_id)
        if failure is not None:
            return failure
        raise errors.result_not_found(candidate_id)
