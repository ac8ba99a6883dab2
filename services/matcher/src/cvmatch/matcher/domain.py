"""The matcher's rules: when a candidate cannot be scored, how batch statistics are counted, and the
adapter that runs the engine off the event loop with a cache of parsed job descriptions.

No grpc, asyncpg or nats here: the engine is pure CPU work, run in a thread pool so the event loop keeps
serving RPCs and consuming events while candidates are scored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from cvmatch.matcher.engine import (
    CandidateTooSparse,
    InvalidRequirements,
    JobProfile,
    JobTooSparse,
    MatchEngine,
    MatchResult,
    RequirementsConfig,
)

T = TypeVar("T")

# Stable reasons of `matcher.candidate.failed` and of stored failures; clients and ingest key on them.
NO_EXTRACTABLE_TEXT = "no_extractable_text"
CV_TOO_SPARSE = "cv_too_sparse"
INVALID_JOB_DESCRIPTION = "invalid_job_description"
INVALID_REQUIREMENTS = "invalid_requirements"
CANDIDATE_NOT_FOUND = "candidate_not_found"
FAILURE_REASONS = (
    NO_EXTRACTABLE_TEXT,
    CV_TOO_SPARSE,
    INVALID_JOB_DESCRIPTION,
    INVALID_REQUIREMENTS,
    CANDIDATE_NOT_FOUND,
)

# Summary statistics count candidates at or above these scores ("candidates_above_70" includes 70.0).
SCORE_THRESHOLDS = (70.0, 80.0, 90.0)

# ListResults paging.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class Unscorable(Exception):
    """A candidate that will never get a score (a retry cannot help): stored as a failure, not retried."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def content_sha256(text: str) -> str:
    """The cache key of a job description: the hash of exactly the text that is parsed."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_requirements(raw: str) -> RequirementsConfig:
    """The CVDeepMatch requirements from their JSON text; empty means the defaults.

    Raises ``InvalidRequirements`` naming the bad field (callers turn it into a 400 or a failure).
    """
    if not raw.strip():
        return RequirementsConfig()
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequirements("requirements_json", "is not valid JSON") from None
    return RequirementsConfig.from_dict(data)


@dataclass(frozen=True)
class BatchCounts:
    """Aggregates of one batch as the repository counts them."""

    successful: int
    errors: int
    average: float | None
    highest: float | None
    lowest: float | None
    above: tuple[int, int, int]  # at or above each of SCORE_THRESHOLDS


@dataclass(frozen=True)
class SummaryStats:
    """What a recruiter sees above a batch's ranking."""

    total_candidates: int
    successful_matches: int
    error_count: int
    average_score: float
    highest_score: float
    lowest_score: float
    candidates_above_70: int
    candidates_above_80: int
    candidates_above_90: int


def summary_stats(counts: BatchCounts) -> SummaryStats:
    """Statistics over every candidate of a batch with an outcome (scored or failed).

    Scores are averaged over scored candidates only: a failure has no score, it is counted in
    ``error_count`` (a 0 would drag the average down with a number nobody earned).
    """
    return SummaryStats(
        total_candidates=counts.successful + counts.errors,
        successful_matches=counts.successful,
        error_count=counts.errors,
        average_score=round(counts.average, 1) if counts.average is not None else 0.0,
        highest_score=counts.highest if counts.highest is not None else 0.0,
        lowest_score=counts.lowest if counts.lowest is not None else 0.0,
        candidates_above_70=counts.above[0],
        candidates_above_80=counts.above[1],
        candidates_above_90=counts.above[2],
    )


def page(skip: int, limit: int) -> tuple[int, int]:
    """Checked paging: ``limit`` 0 means the default page; negative values are rejected by the caller."""
    return skip, min(limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class JobCache:
    """Parsed job descriptions by (content hash, engine version), in memory, least recently used out.

    Concurrent requests for the same key share one load, so the first candidates of a batch arriving
    together parse the job description once.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], JobProfile] = OrderedDict()
        self._loading: dict[tuple[str, str], asyncio.Future[JobProfile]] = {}

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: tuple[str, str], load: Callable[[], Awaitable[JobProfile]]) -> JobProfile:
        """The cached profile, or the result of ``load()`` (run once however many callers wait)."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            return found
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[JobProfile] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            profile = await load()
        except Exception as exc:
            future.set_exception(exc)
            # Nobody else may be waiting; retrieve the exception so asyncio does not warn about it.
            future.exception()
            raise
        except BaseException:
            # Cancelled (shutdown): waiters are cancelled too and their events are redelivered.
            future.cancel()
            raise
        finally:
            self._loading.pop(key, None)
        future.set_result(profile)
        self._items[key] = profile
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return profile


@dataclass(frozen=True)
class Scored:
    """A candidate's engine result, or why it has none."""

    result: MatchResult | None
    failure: Unscorable | None
    # The CV's seniority as the engine read it (not part of the engine's result).
    seniority: str | None = None


class Scorer:
    """The engine behind an executor: parse and score without blocking the event loop."""

    def __init__(self, engine: MatchEngine, executor: Executor) -> None:
        self.engine = engine
        self._executor = executor

    @property
    def version(self) -> str:
        """Results and cached profiles are keyed by it: a new taxonomy or scoring never reuses old ones."""
        return self.engine.version

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def parse_job_sync(self, text: str) -> JobProfile:
        """Parses a job description; raises ``Unscorable`` when it has nothing to match against."""
        if not text.strip():
            raise Unscorable(INVALID_JOB_DESCRIPTION, "the job description is empty")
        try:
            return self.engine.parse_job(text)
        except JobTooSparse as exc:
            raise Unscorable(INVALID_JOB_DESCRIPTION, exc.message) from None

    async def parse_job(self, text: str) -> JobProfile:
        """`parse_job_sync` in the executor."""
        return await self._run(self.parse_job_sync, text)

    def score_sync(self, job: JobProfile, text: str, requirements: RequirementsConfig,
                   as_of: date | None = None) -> Scored:
        """Parses and scores one CV (its "Present" read as ``as_of``, today when None); an empty or
        near-empty CV is a failure, never a 0 score."""
        if not text.strip():
            return Scored(None, Unscorable(NO_EXTRACTABLE_TEXT, "the CV has no text"))
        try:
            candidate = self.engine.parse_candidate(text, as_of)
        except CandidateTooSparse as exc:
            return Scored(None, Unscorable(CV_TOO_SPARSE, exc.message))
        # Scoring raises nothing: requirements were validated when parsed (`parse_requirements`).
        return Scored(self.engine.score(job, candidate, requirements), None, candidate.seniority)

    async def score(self, job: JobProfile, text: str, requirements: RequirementsConfig,
                    as_of: date | None = None) -> Scored:
        """`score_sync` in the executor."""
        return await self._run(self.score_sync, job, text, requirements, as_of)

    async def score_many(self, job: JobProfile, texts: Sequence[str], requirements: RequirementsConfig) -> list[Scored]:
        """Scores several CVs in one executor hop (ScoreCandidates), in input order."""
        return await self._run(lambda: [self.score_sync(job, t, requirements) for t in texts])
