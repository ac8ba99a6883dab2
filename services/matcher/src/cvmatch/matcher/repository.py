"""The only SQL of the matcher service. Maps asyncpg errors to domain errors.

A candidate's outcome (a result or a failure) is written with its event in one transaction, and the
primary key on the candidate id is the last word on idempotency: a redelivered event, even under a
new event id, finds the row and neither writes nor publishes a second time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cvmatch.matcher import events
from cvmatch.matcher.domain import SCORE_THRESHOLDS, BatchCounts
from cvmatch.matcher.engine import JobProfile
from cvmatch.platform import errors
from cvmatch.platform.outbox import enqueue

log = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


@dataclass(frozen=True)
class BatchJob:
    """The job description a batch is scored against, as the first candidate recorded it."""

    batch_id: str
    account_id: int
    job_sha256: str
    job_id: str
    requirements_json: str
    # The day "Present" in its CVs means: when the batch was submitted.
    as_of: dt.date


@dataclass(frozen=True)
class Failure:
    """A candidate without a score."""

    candidate_id: str
    batch_id: str
    stage: str
    reason: str
    message: str
    original_filename: str


def uuid_or_none(value: str) -> uuid.UUID | None:
    """Ids are UUIDs; anything else names nothing stored."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Turns connection failures into a retryable error; anything unexpected stays internal."""
    try:
        yield
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
        raise errors.unavailable("Matcher database unavailable; retry later") from None


class Repository:
    """Job profiles, batches, results and failures in the `matcher` schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def _one(self) -> AsyncIterator[Conn]:
        with _mapped():
            async with self._pool.acquire() as c:
                yield c

    # --- job profiles (a cache: written outside the candidate's transaction) ----------------------

    async def get_job_profile(self, sha256: str, engine_version: str) -> JobProfile | None:
        """A job description parsed earlier by this engine version, or None."""
        async with self._one() as conn:
            raw = await conn.fetchval(
                "SELECT profile::text FROM job_profiles WHERE sha256 = $1 AND engine_version = $2",
                sha256,
                engine_version,
            )
        return None if raw is None else JobProfile.from_dict(json.loads(raw))

    async def save_job_profile(self, sha256: str, engine_version: str, profile: JobProfile) -> None:
        """Stores a parsed job description; a concurrent writer of the same key wins harmlessly."""
        async with self._one() as conn:
            await conn.execute(
                """INSERT INTO job_profiles (sha256, engine_version, job_title, job_summary, profile)
                   VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING""",
                sha256,
                engine_version,
                profile.job_title,
                profile.job_summary,
                json.dumps(profile.to_dict(), sort_keys=True),
            )

    # --- batches ----------------------------------------------------------------------------------

    async def get_batch(self, batch_id: str, conn: Conn) -> BatchJob | None:
        """The batch's job description reference, once a candidate of it was handled."""
        bid = uuid_or_none(batch_id)
        if bid is None:
            return None
        row = await conn.fetchrow(
            """SELECT batch_id, account_id, job_sha256, job_id, requirements_json, as_of FROM batches
               WHERE batch_id = $1""", bid)
        if row is None:
            return None
        return BatchJob(
            str(row["batch_id"]), row["account_id"], row["job_sha256"], row["job_id"], row["requirements_json"],
            row["as_of"],
        )

    async def save_batch(self, conn: Conn, batch: BatchJob) -> BatchJob:
        """Records the batch's job description reference (first writer wins) and returns the record that
        won: when candidates of a new batch race, every one of them scores against the first's."""
        row = await conn.fetchrow(
            """INSERT INTO batches (batch_id, account_id, job_sha256, job_id, requirements_json, as_of)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING batch_id""",
            uuid.UUID(batch.batch_id),
            batch.account_id,
            batch.job_sha256,
            batch.job_id,
            batch.requirements_json,
            batch.as_of,
        )
        if row is not None:
            return batch
        stored = await self.get_batch(batch.batch_id, conn)
        assert stored is not None  # the conflicting row is committed (the insert waited for it)
        return stored

    async def batch_job_profile(self, batch_id: str) -> tuple[str, str] | None:
        """(job_title, job_summary) of the batch's job description, when it was parsed."""
        bid = uuid_or_none(batch_id)
        if bid is None:
            return None
        async with self._one() as conn:
            row = await conn.fetchrow(
                """SELECT p.job_title, p.job_summary FROM batches b
                   JOIN job_profiles p ON p.sha256 = b.job_sha256
                   WHERE b.batch_id = $1 ORDER BY p.created_at DESC LIMIT 1""",
                bid,
            )
        return None if row is None else (row["job_title"], row["job_summary"])

    # --- outcomes ---------------------------------------------------------------------------------

    async def has_outcome(self, conn: Conn, candidate_id: str) -> bool:
        """Whether the candidate already has a result or a failure (so the work can be skipped)."""
        cid = uuid.UUID(candidate_id)
        return bool(
            await conn.fetchval(
                """SELECT EXISTS (SELECT 1 FROM match_results WHERE candidate_id = $1)
                   OR EXISTS (SELECT 1 FROM match_failures WHERE candidate_id = $1)""",
                cid,
            )
        )

    async def store_result(
        self,
        conn: Conn,
        *,
        candidate_id: str,
        batch_id: str,
        account_id: int,
        overall_score: float,
        verdict: str,
        result: bytes,
    ) -> bool:
        """Stores a result and enqueues `matcher.candidate.matched` in the caller's transaction.

        Returns False (and enqueues nothing) when the candidate already has a result.
        """
        inserted = await conn.fetchval(
            """INSERT INTO match_results (candidate_id, batch_id, account_id, overall_score, result)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (candidate_id) DO NOTHING RETURNING true""",
            uuid.UUID(candidate_id),
            uuid.UUID(batch_id),
            account_id,
            overall_score,
            result,
        )
        if not inserted:
            return False
        await enqueue(
            conn,
            events.CANDIDATE_MATCHED,
            events.candidate_matched(candidate_id, batch_id, account_id, overall_score, verdict),
            event_id=events.outcome_event_id(events.CANDIDATE_MATCHED, candidate_id),
        )
        return True

    async def store_failure(
        self,
        conn: Conn,
        *,
        candidate_id: str,
        batch_id: str,
        account_id: int,
        stage: str,
        reason: str,
        message: str,
        original_filename: str = "",
        publish: bool,
    ) -> bool:
        """Stores a failure; with ``publish``, enqueues `matcher.candidate.failed` in the same transaction.

        Returns False (and enqueues nothing) when the candidate already has a failure.
        """
        inserted = await conn.fetchval(
            """INSERT INTO match_failures (candidate_id, batch_id, account_id, stage, reason, message,
                                           original_filename)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (candidate_id) DO NOTHING RETURNING true""",
            uuid.UUID(candidate_id),
            uuid.UUID(batch_id),
            account_id,
            stage,
            reason,
            message,
            original_filename,
        )
        if not inserted:
            return False
        if publish:
            await enqueue(
                conn,
                events.CANDIDATE_FAILED,
                events.candidate_failed(candidate_id, batch_id, account_id, reason, message),
                event_id=events.outcome_event_id(events.CANDIDATE_FAILED, candidate_id),
            )
        return True

    # --- reads ------------------------------------------------------------------------------------

    async def get_result(self, candidate_id: str) -> bytes | None:
        """A stored result's bytes, or None."""
        cid = uuid_or_none(candidate_id)
        if cid is None:
            return None
        async with self._one() as conn:
            raw = await conn.fetchval("SELECT result FROM match_results WHERE candidate_id = $1", cid)
        return None if raw is None else bytes(raw)

    async def get_failure(self, candidate_id: str) -> Failure | None:
        """A stored failure, or None."""
        cid = uuid_or_none(candidate_id)
        if cid is None:
            return None
        async with self._one() as conn:
            row = await conn.fetchrow(
                f"SELECT {_FAILURE_COLUMNS} FROM match_failures WHERE candidate_id = $1", cid)
        return None if row is None else _failure(row)

    async def list_failures(self, batch_id: str) -> list[Failure]:
        """Every candidate of the batch without a score, in candidate id order."""
        bid = uuid_or_none(batch_id)
        if bid is None:
            return []
        async with self._one() as conn:
            rows = await conn.fetch(
                f"""SELECT {_FAILURE_COLUMNS} FROM match_failures f WHERE batch_id = $1
                     AND NOT EXISTS (SELECT 1 FROM match_results r WHERE r.candidate_id = f.candidate_id)
                   ORDER BY candidate_id""",
                bid,
            )
        return [_failure(r) for r in rows]

    async def list_results(self, batch_id: str, skip: int, limit: int) -> list[bytes]:
        """One page of a batch's results, best first; ties in candidate id order so pages are stable."""
        bid = uuid_or_none(batch_id)
        if bid is None:
            return []
        async with self._one() as conn:
            rows = await conn.fetch(
                """SELECT result FROM match_results WHERE batch_id = $1
                   ORDER BY overall_score DESC, candidate_id OFFSET $2 LIMIT $3""",
                bid,
                skip,
                limit,
            )
        return [bytes(r["result"]) for r in rows]

    async def batch_counts(self, batch_id: str, errors: int) -> BatchCounts:
        """Aggregates over the batch's scores (not one page); `errors` is its count of unscored
        candidates, which the caller has already read with `list_failures`."""
        bid = uuid_or_none(batch_id)
        if bid is None:
            return BatchCounts(0, errors, None, None, None, (0, 0, 0))
        t70, t80, t90 = SCORE_THRESHOLDS
        async with self._one() as conn:
            row: Any = await conn.fetchrow(
                """SELECT count(*) AS n, avg(overall_score) AS avg, max(overall_score) AS hi,
                          min(overall_score) AS lo,
                          count(*) FILTER (WHERE overall_score >= $2) AS a70,
                          count(*) FILTER (WHERE overall_score >= $3) AS a80,
                          count(*) FILTER (WHERE overall_score >= $4) AS a90
                   FROM match_results WHERE batch_id = $1""",
                bid,
                t70,
                t80,
                t90,
            )
        return BatchCounts(
            successful=int(row["n"]),
            errors=errors,
            average=None if row["avg"] is None else float(row["avg"]),
            highest=row["hi"],
            lowest=row["lo"],
            above=(int(row["a70"]), int(row["a80"]), int(row["a90"])),
        )


_FAILURE_COLUMNS = "candidate_id, batch_id, stage, reason, message, original_filename"


def _failure(row: Any) -> Failure:
    return Failure(str(row["candidate_id"]), str(row["batch_id"]), row["stage"], row["reason"], row["message"],
                   row["original_filename"])
