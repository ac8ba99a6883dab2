"""Background work of the ingest service: extraction workers and the reconciler.

Workers claim spooled candidates with a lease (`FOR UPDATE SKIP LOCKED`), extract them in the sandbox
and store the result, drop the spool and enqueue the candidate's event in one transaction. A worker that
dies holding a claim only delays that file: its lease runs out and another worker (here or in another
replica) takes it again; after `max_attempts` claims the file gets `parse_error` instead of looping.

The reconciler makes every accepted batch reach a final state whatever is lost on the way: it publishes
`ingest.candidate.ingested` again for candidates the matcher has not answered, settles open batches whose
candidates are all done, and releases credits of admissions a crash interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cvmatch.ingest.admission import Billing
from cvmatch.ingest.config import Settings
from cvmatch.ingest.domain import CandidateState
from cvmatch.ingest.extraction import ExtractionPool, Outcome, document_from_text
from cvmatch.ingest.repository import Repository, WorkItem

log = logging.getLogger(__name__)


class Workers:
    """The extraction loop (run N times) and the reconciler loop."""

    def __init__(self, settings: Settings, repo: Repository, pool: ExtractionPool, billing: Billing) -> None:
        self._settings = settings
        self._repo = repo
        self._pool = pool
        self._billing = billing
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A batch was accepted: idle workers look for work now rather than at their next poll."""
        self._wake.set()

    async def run_worker(self, number: int) -> None:
        """Claims and extracts candidates until cancelled."""
        while True:
            try:
                items = await self._repo.claim_work(1, self._settings.lease_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("claiming work failed; retrying", exc_info=True, extra={"worker": number})
                await asyncio.sleep(1.0)
                continue
            if not items:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.worker_poll_seconds)
                continue
            for item in items:
                try:
                    await self.process(item)
                except asyncio.CancelledError:
                    # Stopping (SIGTERM): hand the file back instead of leaving it leased.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(self._repo.release_claim(item.candidate_id)), 2.0)
                    raise
                except Exception:
                    # The lease runs out and the candidate is claimed again (up to max_attempts).
                    log.warning("extraction failed; will retry", exc_info=True,
                                extra={"candidate_id": item.candidate_id, "attempt": item.attempts})
                    await asyncio.sleep(0.5)

    async def process(self, item: WorkItem) -> None:
        """Extracts one claimed candidate and stores its outcome."""
        limits = self._pool.limits
        if item.attempts > self._settings.max_attempts:
            await self._repo.finish_work(item, CandidateState.PARSE_ERROR,
                                         f"The file could not be processed after {item.attempts - 1} attempts.", "", "")
            return
        if item.kind == "missing":
            # Cannot happen while the spool is written with its candidate; never leave the batch hanging.
            await self._repo.finish_work(item, CandidateState.PARSE_ERROR, "The upload was lost.", "", "")
            return
        if item.kind == "text":
            doc = document_from_text(item.data.decode("utf-8", errors="replace"), limits)
        else:
            doc = await self._pool.extract(item.filename, item.data, item.content_type or None)
        state = CandidateState.from_outcome(doc.outcome)
        message = "" if doc.outcome is Outcome.OK else doc.message
        stored = await self._repo.finish_work(item, state, message, doc.text, doc.content_sha256)
        log.info("candidate extracted", extra={"candidate_id": item.candidate_id, "batch_id": item.batch_id,
                                               "outcome": state.value, "stored": stored})

    async def reconcile_once(self) -> dict[str, int]:
        """One pass of the reconciler; returns what it did (for logs and tests)."""
        s = self._settings
        done = {"republished": await self._repo.republish_stuck(s.stuck_seconds, s.max_republishes),
                "settled": await self._repo.redrive_batches(s.stuck_seconds), "released": 0}
        for batch_id, account_id in await self._repo.abandoned_admissions(s.admission_timeout_seconds):
            try:
                await self._billing.release(account_id, batch_id)
            except Exception:
                log.warning("releasing an abandoned admission failed; will retry", exc_info=True,
                            extra={"batch_id": batch_id})
                continue
            await self._repo.drop_submission(batch_id)
            done["released"] += 1
        await self._repo.purge_submissions(s.idempotency_ttl_seconds)
        if any(done.values()):
            log.info("reconciler re-drove work", extra=done)
        return done

    async def run_reconciler(self) -> None:
        """Reconciles every interval until cancelled."""
        while True:
            await asyncio.sleep(self._settings.reconcile_interval_seconds)
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("reconciler pass failed; retrying next interval", exc_info=True)
