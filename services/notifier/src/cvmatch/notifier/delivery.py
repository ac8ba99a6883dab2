"""The delivery workers: claim due deliveries, sign, send, record each attempt.

Each notifier process runs up to ``workers`` attempts at once, fed by one claim loop. Claims go
through Postgres (``FOR UPDATE SKIP LOCKED`` plus a lease), so any number of processes share the
queue and no attempt is made twice while a lease holds. A per-endpoint limit
(``endpoint_concurrency`` in-flight deliveries per endpoint and process) keeps one slow receiver
from occupying every worker: its other deliveries are not claimed until a slot frees up, and the
remaining workers serve the other endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections import Counter

from cvmatch.notifier.domain import DueDelivery
from cvmatch.notifier.repository import Repository
from cvmatch.notifier.webhooks import RetrySchedule, WebhookClient, signature_headers
from cvmatch.platform.errors import DomainError

log = logging.getLogger(__name__)


class Dispatcher:
    """Runs the delivery workers of one process until cancelled."""

    def __init__(self, repo: Repository, client: WebhookClient, schedule: RetrySchedule, *, workers: int,
                 endpoint_concurrency: int, lease_seconds: float, poll_seconds: float) -> None:
        self._repo = repo
        self._client = client
        self._schedule = schedule
        self._workers = workers
        self._endpoint_limit = endpoint_concurrency
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        # Unique per process start: a restarted process never mistakes an old lease for its own.
        self.owner = f"notifier-{uuid.uuid4().hex[:12]}"
        self._in_flight: Counter[uuid.UUID] = Counter()
        self._wake = asyncio.Event()
        # Attempts this process recorded (observability, and lets tests see that work was shared).
        self.attempts_recorded = 0

    def wake(self, _count: int = 0) -> None:
        """New deliveries may be due; called inside the creating transaction, so look a moment later."""
        loop = asyncio.get_running_loop()
        loop.call_soon(self._wake.set)
        loop.call_later(0.05, self._wake.set)

    async def run(self) -> None:
        """Claims due deliveries for idle workers and runs each attempt in its own task, until cancelled.

        One claim statement per round fills every idle worker (claiming one row per worker would make
        the claim round trip the bottleneck); ``workers`` bounds the attempts in flight.
        """
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = self._workers - len(tasks)
                if free <= 0:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                self._wake.clear()
                try:
                    claimed = await self._repo.claim(self.owner, self._lease, free, self._in_flight,
                                                     self._endpoint_limit)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("claiming deliveries failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                for due in claimed:
                    self._in_flight[due.endpoint_id] += 1
                    task = asyncio.create_task(self._run_one(due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if len(claimed) == free:
                    continue  # more may be due right away
                # Nothing (more) due: sleep until woken (new delivery, a finished attempt) or the poll.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_one(self, due: DueDelivery) -> None:
        try:
            await self.attempt(due)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and another worker tries again; nothing is lost.
            log.warning("delivery attempt failed unexpectedly", exc_info=True,
                        extra={"delivery_id": str(due.delivery_id)})
        finally:
            self._in_flight[due.endpoint_id] -= 1
            if self._in_flight[due.endpoint_id] <= 0:
                del self._in_flight[due.endpoint_id]
            # A worker, and maybe a busy endpoint's slot, is free again.
            self._wake.set()

    async def attempt(self, due: DueDelivery) -> None:
        """One signed attempt of a claimed delivery, recorded with its outcome."""
        if not due.secrets:
            raise DomainError("endpoint has no signing secret", "INTERNAL")
        headers = signature_headers(due.message_id, int(time.time()), due.body, due.secrets)
        result = await self._client.send(due.url, due.body, headers)
        decision = self._schedule.decide(due.round_attempts + 1, result)
        recorded = await self._repo.record_attempt(due, self.owner, result, decision)
        if recorded:
            self.attempts_recorded += 1
            log.info("webhook attempt", extra={
                "delivery_id": str(due.delivery_id), "endpoint_id": str(due.endpoint_id),
                "event_type": due.event_type, "attempt": due.attempts + 1, "status_code": result.status_code,
                "error_code": result.error_code, "latency_ms": result.latency_ms,
                "outcome": decision.outcome.value})
