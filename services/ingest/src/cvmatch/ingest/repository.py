"""The only SQL of the ingest service.

A batch's counters (`processed_candidates`, `failed_candidates`) change only in the transaction that
moves one of its candidates to a final outcome, under the batch row's lock, and that transaction also
settles the batch and enqueues `ingest.batch.completed|failed` when it was the last one. Every candidate
transition is guarded by its current state, so a redelivered event or a retaken claim changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import asyncpg

from cvmatch.ingest import domain, events
from cvmatch.ingest.domain import (
    ApiFlavor,
    Batch,
    BatchStatus,
    Candidate,
    CandidateState,
    Claim,
    InputType,
    NewBatch,
)
from cvmatch.platform.db import DbConnection
from cvmatch.platform.outbox import enqueue

log = logging.getLogger(__name__)

_BATCH_COLUMNS = """batch_id, account_id, status, input_type, api_flavor, total_candidates, processed_candidates,
                    failed_candidates, created_at, updated_at, completed_at, error_message, job_id,
                    job_description_sha256, webhook_url, metadata_json, requirements_json"""
_CANDIDATE_COLUMNS = """candidate_id, batch_id, position, original_filename, external_id, outcome,
                        outcome_message, content_sha256"""


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


def _batch(row: asyncpg.Record) -> Batch:
    return Batch(
        batch_id=str(row["batch_id"]), account_id=row["account_id"], status=BatchStatus(row["status"]),
        input_type=InputType(row["input_type"]), api_flavor=ApiFlavor(row["api_flavor"]),
        total_candidates=row["total_candidates"], processed_candidates=row["processed_candidates"],
        failed_candidates=row["failed_candidates"], created_at=row["created_at"], updated_at=row["updated_at"],
        completed_at=row["completed_at"], error_message=row["error_message"] or "", job_id=row["job_id"] or "",
        job_description_sha256=row["job_description_sha256"], webhook_url=row["webhook_url"] or "",
        metadata_json=row["metadata_json"] or "", requirements_json=row["requirements_json"] or "")


def _candidate(row: asyncpg.Record) -> Candidate:
    return Candidate(
        candidate_id=str(row["candidate_id"]), batch_id=str(row["batch_id"]), position=row["position"],
        original_filename=row["original_filename"], external_id=row["external_id"] or "",
        state=CandidateState(row["outcome"]), message=row["outcome_message"] or "",
        content_sha256=row["content_sha256"] or "")


@dataclass(frozen=True)
class WorkItem:
    """A claimed candidate and its spooled bytes."""

    candidate_id: str
    batch_id: str
    account_id: int
    filename: str
    content_type: str
    kind: str
    data: bytes
    attempts: int


@dataclass(frozen=True)
class JobDescription:
    """A batch's job description as the matcher needs it."""

    text: str
    sha256: str
    job_id: str
    requirements_json: str


class Repository:
    """Batches, candidates, the spool and idempotency records of the `ingest` schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- admission ------------------------------------------------------------------------------------

    async def claim_submission(self, batch_id: str, account_id: int, idempotency_key: str, request_sha256: str,
                               ttl_seconds: float) -> tuple[Claim, str]:
        """Records a submission being admitted; with a key, tells a replay / duplicate / misuse apart.

        Returns the claim and the batch id it concerns (ours when NEW, the earlier one otherwise). The
        insert commits at once, so a concurrent duplicate waits on the unique index and then sees it.
        """
        key = idempotency_key or None
        for _ in range(3):
            async with self._pool.acquire() as conn:
                inserted = await conn.fetchval(
                    """INSERT INTO submissions (batch_id, account_id, idempotency_key, request_sha256)
                       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
                    uuid.UUID(batch_id), account_id, key, request_sha256)
                if inserted:
                    return Claim.NEW, batch_id
                row = await conn.fetchrow(
                    """SELECT batch_id, request_sha256, state,
                              created_at < clock_timestamp() - make_interval(secs => $3) AS expired
                       FROM submissions WHERE account_id = $1 AND idempotency_key = $2""",
                    account_id, key, ttl_seconds)
                if row is None:
                    continue  # removed between our insert and select: try again
                if row["expired"]:
                    # Kept 24 h: past that the key is free again (the old batch stays).
                    await conn.execute("UPDATE submissions SET idempotency_key = NULL WHERE batch_id = $1",
                                       row["batch_id"])
                    continue
                claim = domain.judge_existing_key(row["request_sha256"], row["state"], request_sha256)
                return claim, str(row["batch_id"])
        raise RuntimeError("idempotency claim did not settle")

    async def drop_submission(self, batch_id: str) -> None:
        """Forgets a submission that was refused (the key may be used again)."""
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM submissions WHERE batch_id = $1 AND state = 'admitting'",
                               uuid.UUID(batch_id))

    async def create_batch(self, new: NewBatch) -> Batch:
        """Writes the batch, its candidates, their spool and `ingest.batch.created` in one transaction.

        A batch whose every file was refused at submission is settled as failed in the same transaction.
        """
        h = new.header
        bid = uuid.UUID(new.batch_id)
        refused = [c for c in new.candidates if c.refused]
        # A re-run skip (already_matched) is final but not a failure: no `ingest.candidate.failed` for it.
        failed = [c for c in refused if c.state.failed]
        total = len(new.candidates)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""INSERT INTO batches (batch_id, account_id, input_type, api_flavor, job_id, job_description,
                        job_description_sha256, requirements_json, webhook_url, metadata_json, total_candidates,
                        processed_candidates, failed_candidates, source_config_json)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                    RETURNING {_BATCH_COLUMNS}""",
                bid, h.account_id, h.input_type.value, h.api_flavor.value, h.job_id or None, new.job_description,
                new.job_description_sha256, h.requirements_json or None, h.webhook_url or None,
                h.metadata_json or None, total, len(refused), len(failed), new.source_config_json or None)
            assert row is not None
            await conn.executemany(
                """INSERT INTO candidates (candidate_id, batch_id, account_id, position, original_filename,
                       external_id, content_type, outcome, outcome_message, refused_at_submission, source_sha256)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
                [(uuid.UUID(c.candidate_id), bid, h.account_id, i, c.filename, c.external_id or None,
                  c.content_type or None, c.state.value, c.message or None, c.refused, c.source_sha256 or None)
                 for i, c in enumerate(new.candidates)])
            await conn.executemany(
                "INSERT INTO spool (candidate_id, kind, data) VALUES ($1, $2, $3)",
                [(uuid.UUID(c.candidate_id), c.payload_kind, c.payload) for c in new.candidates if not c.refused])
            await conn.execute("UPDATE submissions SET state = 'accepted' WHERE batch_id = $1", bid)
            batch = _batch(row)
            await enqueue(conn, events.BATCH_CREATED, events.batch_created(batch))
            for c in failed:
                await enqueue(conn, events.CANDIDATE_FAILED,
                              events.candidate_failed(c.candidate_id, new.batch_id, h.account_id, c.state, c.message))
            if domain.settle(total, len(refused), len(failed)) is not None:
                batch = await self._settle(conn, bid) or batch
            return batch

    async def matched_source_hashes(self, account_id: int, job_id: str, hashes: list[str]) -> set[str]:
        """Which of these source content hashes were already matched for this job in the account's batches."""
        if not job_id or not hashes:
            return set()
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT DISTINCT c.source_sha256 FROM candidates c JOIN batches b USING (batch_id)
                   WHERE c.account_id = $1 AND c.outcome = 'matched' AND c.source_sha256 = ANY($3::text[])
                   AND b.job_id = $2""", account_id, job_id, hashes)
        return {r["source_sha256"] for r in rows}

    # --- reads ------------------------------------------------------------------------------------------

    async def get_batch(self, batch_id: str, account_id: int | None = None) -> Batch | None:
        """A batch, or None when it does not exist or (with account_id) belongs to another account."""
        bid = _uuid(batch_id)
        if bid is None:
            return None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id = $1", bid)
        if row is None or (account_id is not None and row["account_id"] != account_id):
            return None
        return _batch(row)

    async def list_candidates(self, batch_id: str, skip: int, limit: int) -> tuple[list[Candidate], int]:
        """A page of a batch's candidates in submission order, and their total."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_CANDIDATE_COLUMNS} FROM candidates WHERE batch_id = $1
                    ORDER BY position OFFSET $2 LIMIT $3""", uuid.UUID(batch_id), skip, limit)
            total = await conn.fetchval("SELECT count(*) FROM candidates WHERE batch_id = $1", uuid.UUID(batch_id))
        return [_candidate(r) for r in rows], int(total)

    async def refused_candidates(self, batch_id: str) -> list[Candidate]:
        """The files refused at submission (the skipped list of the answer), in order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_CANDIDATE_COLUMNS} FROM candidates WHERE batch_id = $1 AND refused_at_submission
                    ORDER BY position""", uuid.UUID(batch_id))
        return [_candidate(r) for r in rows]

    async def candidate_text(self, candidate_id: str) -> tuple[Candidate, str] | None:
        """A candidate and its extracted text ('' until extracted or when it failed)."""
        cid = _uuid(candidate_id)
        if cid is None:
            return None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_CANDIDATE_COLUMNS}, text FROM candidates WHERE candidate_id = $1",
                                      cid)
        return None if row is None else (_candidate(row), row["text"] or "")

    async def job_description(self, batch_id: str) -> JobDescription | None:
        """A batch's job description."""
        bid = _uuid(batch_id)
        if bid is None:
            return None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT job_description, job_description_sha256, job_id, requirements_json FROM batches
                   WHERE batch_id = $1""", bid)
        if row is None:
            return None
        return JobDescription(row["job_description"], row["job_description_sha256"], row["job_id"] or "",
                              row["requirements_json"] or "")

    # --- extraction workers -----------------------------------------------------------------------------

    async def claim_work(self, limit: int, lease_seconds: float) -> list[WorkItem]:
        """Leases spooled candidates nobody holds (or whose holder's lease ran out) and returns their bytes.

        The first claim of a batch moves it to processing. SKIP LOCKED lets every worker of every replica
        claim at once without waiting on each other.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """WITH picked AS (
                       SELECT candidate_id FROM candidates
                       WHERE outcome = 'pending' AND (lease_until IS NULL OR lease_until < clock_timestamp())
                       ORDER BY created_at, position
                       LIMIT $1 FOR UPDATE SKIP LOCKED)
                   UPDATE candidates c
                   SET lease_until = clock_timestamp() + make_interval(secs => $2), attempts = c.attempts + 1
                   FROM picked WHERE c.candidate_id = picked.candidate_id
                   RETURNING c.candidate_id, c.batch_id, c.account_id, c.original_filename, c.content_type,
                             c.attempts""", limit, lease_seconds)
            if not rows:
                return []
            spooled = {r["candidate_id"]: r for r in await conn.fetch(
                "SELECT candidate_id, kind, data FROM spool WHERE candidate_id = ANY($1::uuid[])",
                [r["candidate_id"] for r in rows])}
            await conn.execute(
                """UPDATE batches SET status = 'processing', updated_at = clock_timestamp()
                   WHERE batch_id = ANY($1::uuid[]) AND status = 'pending'""",
                list({r["batch_id"] for r in rows}))
        items = []
        for r in rows:
            s = spooled.get(r["candidate_id"])
            items.append(WorkItem(
                candidate_id=str(r["candidate_id"]), batch_id=str(r["batch_id"]), account_id=r["account_id"],
                filename=r["original_filename"], content_type=r["content_type"] or "",
                kind=s["kind"] if s is not None else "missing", data=bytes(s["data"]) if s is not None else b"",
                attempts=r["attempts"]))
        return items

    async def finish_work(self, item: WorkItem, state: CandidateState, message: str, text: str,
                          content_sha256: str) -> bool:
        """Stores an extraction result, drops the spool and enqueues the candidate's event, in one transaction.

        False when the candidate was no longer pending (another worker retook an expired lease and won).
        """
        cid = uuid.UUID(item.candidate_id)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """UPDATE candidates SET outcome = $2, outcome_message = $3, text = $4, content_sha256 = $5,
                          lease_until = NULL, updated_at = clock_timestamp()
                   WHERE candidate_id = $1 AND outcome = 'pending'
                   RETURNING batch_id""", cid, state.value, message or None, text or None, content_sha256 or None)
            if row is None:
                return False
            await conn.execute("DELETE FROM spool WHERE candidate_id = $1", cid)
            if state is CandidateState.INGESTED:
                b = await conn.fetchrow(
                    "SELECT job_description_sha256, job_id, created_at FROM batches WHERE batch_id = $1",
                    row["batch_id"])
                assert b is not None
                await enqueue(conn, events.CANDIDATE_INGESTED, events.candidate_ingested(
                    item.candidate_id, item.batch_id, item.account_id, content_sha256,
                    b["job_description_sha256"], b["job_id"] or "", b["created_at"]))
            else:
                await enqueue(conn, events.CANDIDATE_FAILED, events.candidate_failed(
                    item.candidate_id, item.batch_id, item.account_id, state, message))
                await self._advance(conn, row["batch_id"], failed=True)
            return True

    async def release_claim(self, candidate_id: str) -> None:
        """Gives a claim back at a clean shutdown, so another worker takes it now rather than after the lease."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE candidates SET lease_until = NULL, attempts = greatest(attempts - 1, 0)
                   WHERE candidate_id = $1 AND outcome = 'pending'""", uuid.UUID(candidate_id))

    # --- matcher outcomes -------------------------------------------------------------------------------

    async def record_match(self, conn: DbConnection, candidate_id: str, state: CandidateState, message: str) -> bool:
        """Applies the matcher's verdict inside the consumer's transaction; False when nothing changed.

        Only an INGESTED candidate moves, so a redelivered or repeated verdict counts once.
        """
        cid = _uuid(candidate_id)
        if cid is None:
            log.warning("matcher event for a malformed candidate id ignored")
            return False
        row = await conn.fetchrow(
            """UPDATE candidates SET outcome = $2, outcome_message = $3, updated_at = clock_timestamp()
               WHERE candidate_id = $1 AND outcome = 'ingested' RETURNING batch_id""",
            cid, state.value, message or None)
        if row is None:
            return False
        await self._advance(conn, row["batch_id"], failed=state is not CandidateState.MATCHED)
        return True

    async def _advance(self, conn: DbConnection, batch_id: uuid.UUID, *, failed: bool) -> None:
        """One more candidate of the batch has its final outcome; settle the batch if it was the last."""
        row = await conn.fetchrow(
            """UPDATE batches SET processed_candidates = processed_candidates + 1,
                      failed_candidates = failed_candidates + $2, updated_at = clock_timestamp()
               WHERE batch_id = $1
               RETURNING total_candidates, processed_candidates, failed_candidates, status""",
            batch_id, 1 if failed else 0)
        if row is None or BatchStatus(row["status"]).terminal:
            return
        if domain.settle(row["total_candidates"], row["processed_candidates"], row["failed_candidates"]):
            await self._settle(conn, batch_id)

    async def _settle(self, conn: DbConnection, batch_id: uuid.UUID) -> Batch | None:
        """Marks a batch whose candidates all have outcomes completed or failed and enqueues the event.

        Counts are recomputed from the candidates (the source of truth) under the batch row's lock.
        """
        locked = await conn.fetchrow("SELECT status FROM batches WHERE batch_id = $1 FOR UPDATE", batch_id)
        if locked is None or BatchStatus(locked["status"]).terminal:
            return None
        rows = await conn.fetch("SELECT outcome, count(*) AS n FROM candidates WHERE batch_id = $1 GROUP BY outcome",
                                batch_id)
        by_state = {CandidateState(r["outcome"]): int(r["n"]) for r in rows}
        total = sum(by_state.values())
        processed = sum(n for s, n in by_state.items() if s.terminal)
        failed = sum(n for s, n in by_state.items() if s.failed)
        status = domain.settle(total, processed, failed)
        if status is None:
            return None
        error = domain.failure_message(total, by_state) if status is BatchStatus.FAILED else None
        row = await conn.fetchrow(
            f"""UPDATE batches SET status = $2, processed_candidates = $3, failed_candidates = $4,
                      total_candidates = $5, error_message = $6, completed_at = clock_timestamp(),
                      updated_at = clock_timestamp()
                WHERE batch_id = $1 RETURNING {_BATCH_COLUMNS}""",
            batch_id, status.value, processed, failed, total, error)
        assert row is not None
        batch = _batch(row)
        if status is BatchStatus.COMPLETED:
            await enqueue(conn, events.BATCH_COMPLETED,
                          events.batch_completed(batch, by_state.get(CandidateState.MATCHED, 0)))
        else:
            await enqueue(conn, events.BATCH_FAILED, events.batch_failed(batch))
        log.info("batch settled", extra={"batch_id": batch.batch_id, "status": status.value,
                                         "total": total, "failed": failed})
        return batch

    # --- reconciler -------------------------------------------------------------------------------------

    async def republish_stuck(self, older_than_seconds: float, max_republishes: int, limit: int = 500) -> int:
        """Publishes `ingest.candidate.ingested` again for candidates the matcher has not answered for.

        A fresh event id (the earlier message may be lost or dead-lettered); the verdict is applied once
        however many times the matcher answers, because only an INGESTED candidate moves. A candidate already
        published again `max_republishes` times gets `match_failed` instead (with `ingest.candidate.failed`),
        so its batch settles rather than staying open forever. Returns the candidates acted on.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT c.candidate_id, c.batch_id, c.account_id, c.content_sha256, c.republishes,
                          b.job_description_sha256, b.job_id, b.created_at AS batch_created_at
                   FROM candidates c JOIN batches b USING (batch_id)
                   WHERE c.outcome = 'ingested' AND c.updated_at < clock_timestamp() - make_interval(secs => $1)
                   ORDER BY c.updated_at LIMIT $2 FOR UPDATE OF c SKIP LOCKED""", older_than_seconds, limit)
            again = [r for r in rows if r["republishes"] < max_republishes]
            for r in again:
                await enqueue(conn, events.CANDIDATE_INGESTED, events.candidate_ingested(
                    str(r["candidate_id"]), str(r["batch_id"]), r["account_id"], r["content_sha256"] or "",
                    r["job_description_sha256"], r["job_id"] or "", r["batch_created_at"]))
            if again:
                await conn.execute(
                    """UPDATE candidates SET updated_at = clock_timestamp(), republishes = republishes + 1
                       WHERE candidate_id = ANY($1)""", [r["candidate_id"] for r in again])
            for r in rows:
                if r["republishes"] < max_republishes:
                    continue
                message = domain.gave_up_message(r["republishes"], older_than_seconds)
                if await self.record_match(conn, str(r["candidate_id"]), CandidateState.MATCH_FAILED, message):
                    await enqueue(conn, events.CANDIDATE_FAILED, events.candidate_failed(
                        str(r["candidate_id"]), str(r["batch_id"]), r["account_id"], CandidateState.MATCH_FAILED,
                        message))
                    log.warning("candidate given up: no match result", extra={
                        "candidate_id": str(r["candidate_id"]), "batch_id": str(r["batch_id"])})
        return len(rows)

    async def redrive_batches(self, older_than_seconds: float, limit: int = 200) -> int:
        """Settles open batches that have not moved for a while although every candidate has an outcome."""
        async with self._pool.acquire() as conn:
            # Only batches that can settle now: a batch still waiting on its candidates is left alone.
            ids = await conn.fetch(
                """SELECT b.batch_id FROM batches b WHERE b.status IN ('pending', 'processing')
                   AND b.updated_at < clock_timestamp() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM candidates c WHERE c.batch_id = b.batch_id
                                   AND c.outcome IN ('pending', 'ingested'))
                   ORDER BY b.updated_at LIMIT $2""", older_than_seconds, limit)
        settled = 0
        for r in ids:
            async with self._pool.acquire() as conn, conn.transaction():
                if await self._settle(conn, r["batch_id"]) is not None:
                    settled += 1
        return settled

    async def abandoned_admissions(self, older_than_seconds: float, limit: int = 100) -> list[tuple[str, int]]:
        """Submissions still being admitted long after they started (the process died mid-admission)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT s.batch_id, s.account_id FROM submissions s
                   WHERE s.state = 'admitting' AND s.created_at < clock_timestamp() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = s.batch_id)
                   ORDER BY s.created_at LIMIT $2""", older_than_seconds, limit)
        return [(str(r["batch_id"]), r["account_id"]) for r in rows]

    async def purge_submissions(self, older_than_seconds: float) -> int:
        """Forgets accepted submissions past the idempotency window (their batches stay)."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                """DELETE FROM submissions WHERE state = 'accepted'
                   AND created_at < clock_timestamp() - make_interval(secs => $1)""", older_than_seconds)
        return int(status.split()[-1])
