"""Killing the ingest process (SIGKILL) at several points after the 202: the batch still completes, with
every candidate extracted, published and settled exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from nats.aio.client import Client as NatsClient

from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.ingest.v1 import ingest_service_pb2_grpc
from cvmatch.ingest.app import MIGRATIONS
from cvmatch.ingest.config import Settings
from cvmatch.platform.db import migrate
from cvmatch.platform.settings import Env
from cvmatch.testing import filegen
from cvmatch.testing.servers import Postgres, free_port

from .conftest import (
    BillingProcess,
    BillingStub,
    balance,
    eventually,
    header,
    ingest_env,
    new_account,
    outbox_payloads,
    publish_matched,
    submit,
)

N_FILES = 30


class IngestProcess:
    """`python -m cvmatch.ingest serve` as a child process that the test kills and restarts."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = {**os.environ, **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cvmatch.ingest", "serve"], env=self.env,
                                         stdout=out, stderr=out, start_new_session=True)

    def kill(self) -> None:
        assert self.proc is not None
        # The whole process group: the service and its sandboxed extraction workers die together.
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
async def crashable(postgres_server: Postgres, nats_server: Any, billing: BillingProcess,
                    tmp_path: Path) -> AsyncIterator[tuple[IngestProcess, asyncpg.Pool, str]]:
    url = postgres_server.create_database(f"ingest_crash_{uuid.uuid4().hex[:8]}")
    port = free_port()
    env = ingest_env(url, nats_server.url, billing.address, port, INGEST_WORKERS="1", INGEST_LEASE_SECONDS="2",
                     INGEST_EXTRACT_WALL_SECONDS="2", INGEST_RECONCILE_INTERVAL_SECONDS="0.5",
                     # Long enough that nothing is re-published: every ingested event below is the first.
                     INGEST_STUCK_SECONDS="120")
    await migrate(Settings.from_env(Env(env)).common, MIGRATIONS)
    proc = IngestProcess(env, tmp_path / "ingest.log")
    proc.start()
    db = await asyncpg.create_pool(url, min_size=1, max_size=2, server_settings={"search_path": "ingest"})
    try:
        yield proc, db, f"127.0.0.1:{port}"
    finally:
        proc.stop()
        await db.close()


async def _count(db: asyncpg.Pool, outcome: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM candidates WHERE outcome = $1", outcome))


async def test_kill_and_restart_repeatedly_still_completes_once(
        crashable: tuple[IngestProcess, asyncpg.Pool, str], billing_stub: BillingStub, nc: NatsClient) -> None:
    proc, db, address = crashable
    account = await new_account(billing_stub, 100)
    files = [("cv", f"cv{i:02}.pdf", "application/pdf", filegen.cv_pdf(2, f"Person {i}")) for i in range(N_FILES)]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        resp = await eventually(lambda: submit(stub, header(account), files), timeout=60)
    bid = resp.batch.batch_id
    # Kill 1: right after the 202, before (or while) the first files are extracted.
    proc.kill()
    proc.start()
    # Kill 2: in the middle of extraction.
    await eventually(lambda: _count(db, "ingested"), timeout=60, interval=0.02)
    assert await _count(db, "pending") > 0, "extraction finished before the kill; make the files bigger"
    proc.kill()
    proc.start()

    # The matcher answers each ingested candidate once (while ingest is up or down: the durable consumer
    # holds the verdicts until it is back).
    answered: set[str] = set()

    async def matcher() -> None:
        while True:
            rows = await db.fetch("SELECT candidate_id FROM candidates WHERE batch_id = $1 AND outcome = 'ingested'",
                                  uuid.UUID(bid))
            for r in rows:
                cid = str(r["candidate_id"])
                if cid not in answered:
                    answered.add(cid)
                    await publish_matched(nc, cid, bid, account)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(matcher())
    try:
        # Kill 3: while verdicts are being applied.
        await eventually(lambda: _count(db, "matched"), timeout=60, interval=0.02)
        proc.kill()
        await asyncio.sleep(0.5)
        proc.start()

        async def completed() -> bool:
            return await db.fetchval("SELECT status FROM batches WHERE batch_id = $1", uuid.UUID(bid)) == "completed"

        await eventually(completed, timeout=90, interval=0.2)
    finally:
        task.cancel()
    row = await db.fetchrow("SELECT total_candidates, processed_candidates, failed_candidates FROM batches")
    assert row is not None and tuple(row) == (N_FILES, N_FILES, 0)
    assert await _count(db, "matched") == N_FILES
    assert await db.fetchval("SELECT count(*) FROM spool") == 0
    # Exactly once: one ingested event per candidate (extraction and its event commit together), one end.
    ingested = [ingest_events.CandidateIngested.FromString(p)
                for p in await outbox_payloads(db, "ingest.candidate.ingested")]
    assert sorted(e.candidate_id for e in ingested) == sorted(answered)
    assert len(ingested) == N_FILES
    assert len(await outbox_payloads(db, "ingest.batch.completed")) == 1

    async def settled() -> bool:
        bal = await balance(billing_stub, account)
        return bal.captured == N_FILES and bal.reserved == 0

    await eventually(settled, timeout=30)
