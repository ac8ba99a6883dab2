"""Ingest integration fixtures: real Postgres and NATS (session servers), billing as a real process,
and the ingest service either in-process (fast) or as a child process (for kill-and-restart tests)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import nats
import pytest
from nats.aio.client import Client as NatsClient

from cvmatch.api.billing.v1 import account_pb2
from cvmatch.api.billing.v1 import billing_service_pb2 as billing_pb
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.api.ingest.v1 import batch_pb2, ingest_service_pb2_grpc
from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.ingest.app import MIGRATIONS, build
from cvmatch.ingest.config import Settings
from cvmatch.platform.db import migrate
from cvmatch.platform.interceptors import ERROR_BODY_KEY, HTTP_STATUS_KEY
from cvmatch.platform.server import serve
from cvmatch.platform.settings import Env
from cvmatch.testing.servers import Postgres, free_port
from cvmatch.testing.stack import check_health

PEPPER = "ingest-tests-pepper-0123456789"
_names = itertools.count()
BillingStub = billing_grpc.BillingServiceStub

# Small limits keep the tests fast: "too large" is 300 KB, not 5 MB.
FAST_ENV = {
    "INGEST_MAX_FILE_BYTES": str(300_000),
    "INGEST_EXTRACTION_PROCESSES": "1",
    "INGEST_WORKERS": "2",
    "INGEST_WORKER_POLL_SECONDS": "0.2",
    # Verdicts held by a killed process come back after this (the durable keeps the value it was created with).
    "INGEST_EVENT_ACK_WAIT_SECONDS": "2",
    "OUTBOX_POLL_SECONDS": "0.05",
    "DB_POOL_MAX": "30",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class BillingProcess:
    """billing running as a child process on the session's Postgres and NATS."""

    address: str
    proc: subprocess.Popen[bytes]


def _wait_serving(address: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while check_health(address) != 1:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address} not serving: {log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def billing(postgres_server: Postgres, nats_server: Any, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[BillingProcess]:
    """The real billing service (it reserves, captures on matcher events and releases on batch ends)."""
    url = postgres_server.create_database("ingest_tests_billing")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "NATS_URL": nats_server.url, "CVMATCH_ENV": "test",
           "BILLING_KEY_PEPPER": PEPPER, "BILLING_GRPC_PORT": str(port), "LOG_LEVEL": "WARNING",
           "OUTBOX_POLL_SECONDS": "0.05"}
    log = tmp_path_factory.mktemp("billing") / "billing.log"
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-m", "cvmatch.billing", "migrate"], env=env, stdout=out, stderr=out,
                       check=True, timeout=120)
        proc = subprocess.Popen([sys.executable, "-m", "cvmatch.billing", "serve"], env=env, stdout=out,
                                stderr=out, start_new_session=True)
    try:
        _wait_serving(f"127.0.0.1:{port}", proc, log)
        yield BillingProcess(f"127.0.0.1:{port}", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
async def billing_stub(billing: BillingProcess) -> AsyncIterator[billing_grpc.BillingServiceStub]:
    """A client of the billing process."""
    async with grpc.aio.insecure_channel(billing.address) as channel:
        yield billing_grpc.BillingServiceStub(channel)


async def new_account(stub: billing_grpc.BillingServiceStub, credits: int = 100) -> int:
    """A fresh account with `credits` available."""
    resp = await stub.CreateAccount(billing_pb.CreateAccountRequest(
        name=f"acct-{uuid.uuid4().hex[:8]}", plan=account_pb2.PLAN_PRO, initial_credits=credits))
    return int(resp.account.account_id)


async def balance(stub: billing_grpc.BillingServiceStub, account_id: int) -> billing_pb.GetBalanceResponse:
    """The account's balance as billing reports it."""
    return await stub.GetBalance(billing_pb.GetBalanceRequest(account_id=account_id))


def ingest_env(database_url: str, nats_url: str, billing_addr: str, port: int, **extra: str) -> dict[str, str]:
    """The environment an ingest process reads."""
    return {"DATABASE_URL": database_url, "NATS_URL": nats_url, "BILLING_ADDR": billing_addr,
            "INGEST_GRPC_PORT": str(port), **FAST_ENV, **extra}


@dataclass
class RunningIngest:
    """An ingest service and what a test needs to talk to it."""

    stub: ingest_service_pb2_grpc.IngestServiceStub
    settings: Settings
    database_url: str
    db: asyncpg.Pool


IngestFactory = Callable[..., Awaitable[RunningIngest]]


@pytest.fixture
async def start_ingest(postgres_server: Postgres, nats_server: Any, billing: BillingProcess,
                       ) -> AsyncIterator[IngestFactory]:
    """Starts an in-process ingest service on a fresh database, with settings overrides."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None], grpc.aio.Channel, asyncpg.Pool]] = []

    async def start(**overrides: str) -> RunningIngest:
        url = postgres_server.create_database(f"ingest_{os.getpid()}_{next(_names)}")
        port = free_port()
        settings = Settings.from_env(Env(ingest_env(url, nats_server.url, billing.address, port, **overrides)))
        await migrate(settings.common, MIGRATIONS)
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(settings.common, build(settings), ready=ready, stop=stop))
        async with asyncio.timeout(60):
            await asyncio.wait({task, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        db = await asyncpg.create_pool(url, min_size=1, max_size=4,
                                       server_settings={"search_path": "ingest"})
        stops.append((stop, task, channel, db))
        return RunningIngest(ingest_service_pb2_grpc.IngestServiceStub(channel), settings, url, db)

    yield start
    for stop, task, channel, db in stops:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        await channel.close()
        await db.close()


@pytest.fixture
async def nc(nats_server: Any) -> AsyncIterator[NatsClient]:
    """A NATS client for publishing the matcher's events as the matcher would."""
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.drain()


# ----------------------------------------------------------------------------------------- helpers


def header(account_id: int, input_type: int = batch_pb2.INPUT_TYPE_FILES, **fields: Any) -> pb.BatchHeader:
    """A batch header with a job description unless one is given."""
    fields.setdefault("job_description_text", "Senior Python engineer with Kubernetes and PostgreSQL experience.")
    return pb.BatchHeader(account_id=account_id, input_type=input_type,  # type: ignore[arg-type]
                          api_flavor=batch_pb2.API_FLAVOR_SKILLMATCHIQ, **fields)


File = tuple[str, str, str, bytes]  # part, filename, content type, bytes


def stream(h: pb.BatchHeader, files: Sequence[File], chunk: int = 64 * 1024) -> list[pb.CreateBatchRequest]:
    """The CreateBatch stream the gateway would send: header, then each file in chunks."""
    out = [pb.CreateBatchRequest(header=h)]
    for part, filename, content_type, data in files:
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
        for i, piece in enumerate(pieces):
            out.append(pb.CreateBatchRequest(chunk=pb.FileChunk(
                part=part, filename=filename, content_type=content_type, data=piece, last=i == len(pieces) - 1)))
    return out


async def submit(stub: ingest_service_pb2_grpc.IngestServiceStub, h: pb.BatchHeader,
                 files: Sequence[File] = ()) -> pb.CreateBatchResponse:
    """CreateBatch."""
    resp: pb.CreateBatchResponse = await stub.CreateBatch(iter(stream(h, files)))
    return resp


def error_of(exc: grpc.aio.AioRpcError) -> tuple[str, int, dict[str, Any]]:
    """(reason, HTTP status for the edge, error details) of a failed call."""
    md = {k: v for k, v in (exc.trailing_metadata() or ())}
    body = json.loads(str(md[ERROR_BODY_KEY]))["error"]
    return body["code"], int(str(md.get(HTTP_STATUS_KEY, "0"))), body


async def publish_matched(nc: NatsClient, candidate_id: str, batch_id: str, account_id: int,
                          score: float = 80.0) -> None:
    """`matcher.candidate.matched`, exactly as the matcher's outbox relay publishes it."""
    await _publish(nc, "matcher.candidate.matched", matcher_events.CandidateMatched(
        candidate_id=candidate_id, batch_id=batch_id, account_id=account_id, overall_score=score, verdict="good"))


async def publish_match_failed(nc: NatsClient, candidate_id: str, batch_id: str, account_id: int) -> None:
    """`matcher.candidate.failed`."""
    await _publish(nc, "matcher.candidate.failed", matcher_events.CandidateMatchFailed(
        candidate_id=candidate_id, batch_id=batch_id, account_id=account_id, reason="parse_error",
        message="could not score"))


async def _publish(nc: NatsClient, subject: str, message: Any) -> None:
    eid = str(uuid.uuid4())
    await nc.jetstream().publish(subject, message.SerializeToString(), headers={
        "Nats-Msg-Id": eid, "ce-id": eid, "ce-specversion": "1.0", "ce-type": message.DESCRIPTOR.full_name,
        "ce-source": "cvmatch/matcher", "content-type": "application/protobuf"})


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Polls `check` until it returns something truthy; fails with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(grpc.aio.AioRpcError, OSError, asyncpg.PostgresError):
            last = await check()
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def candidates(stub: ingest_service_pb2_grpc.IngestServiceStub, batch_id: str,
                     account_id: int = 0) -> list[batch_pb2.Candidate]:
    """Every candidate of a batch, in order."""
    resp = await stub.ListCandidates(pb.ListCandidatesRequest(batch_id=batch_id, account_id=account_id, limit=1000))
    return list(resp.candidates)


async def outbox_payloads(db: asyncpg.Pool, subject: str) -> list[bytes]:
    """Payloads ingest wrote to its outbox on a subject, in order (the durable record of its events)."""
    rows = await db.fetch("SELECT payload FROM outbox WHERE subject = $1 ORDER BY created_at", subject)
    return [bytes(r["payload"]) for r in rows]
