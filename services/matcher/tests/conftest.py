"""Matcher service fixtures: the whole service in-process on real Postgres and NATS, with ingest's two
RPCs served by a small in-test implementation of its contract (the proto), started once per session
so the engine loads once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import grpc
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.ingest.v1 import ingest_service_pb2 as ingest_pb
from cvmatch.api.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.api.matcher.v1 import matcher_service_pb2_grpc as pb_grpc
from cvmatch.matcher.app import MIGRATIONS, build
from cvmatch.matcher.config import Settings
from cvmatch.platform.db import create_pool, migrate
from cvmatch.platform.events import cloudevent_headers
from cvmatch.platform.server import serve
from cvmatch.platform.settings import Env
from cvmatch.testing.servers import Nats, Postgres, free_port

Payload = matcher_events.CandidateMatched | matcher_events.CandidateMatchFailed


@dataclass
class FakeIngest(ingest_grpc.IngestServiceServicer):
    """ingest's GetJobDescription and GetCandidateText over real gRPC, from in-memory records."""

    jobs: dict[str, ingest_pb.GetJobDescriptionResponse] = field(default_factory=dict)
    candidates: dict[str, ingest_pb.GetCandidateTextResponse] = field(default_factory=dict)
    job_calls: dict[str, int] = field(default_factory=dict)
    # Candidate id -> how many more GetCandidateText calls answer UNAVAILABLE (an ingest outage).
    outages: dict[str, int] = field(default_factory=dict)
    text_calls: dict[str, int] = field(default_factory=dict)

    def add_job(self, batch_id: str, text: str, requirements_json: str = "", job_id: str = "") -> None:
        self.jobs[batch_id] = ingest_pb.GetJobDescriptionResponse(
            text=text, job_id=job_id, requirements_json=requirements_json
        )

    def add_candidate(self, batch_id: str, text: str, filename: str, external_id: str = "") -> str:
        cid = str(uuid.uuid4())
        self.candidates[cid] = ingest_pb.GetCandidateTextResponse(
            text=text,
            candidate=batch_pb2.Candidate(
                candidate_id=cid, batch_id=batch_id, original_filename=filename, external_id=external_id
            ),
        )
        return cid

    async def GetJobDescription(
        self, request: ingest_pb.GetJobDescriptionRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb.GetJobDescriptionResponse:
        self.job_calls[request.batch_id] = self.job_calls.get(request.batch_id, 0) + 1
        found = self.jobs.get(request.batch_id)
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "batch not found")
        assert found is not None
        return found

    async def GetCandidateText(
        self, request: ingest_pb.GetCandidateTextRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb.GetCandidateTextResponse:
        self.text_calls[request.candidate_id] = self.text_calls.get(request.candidate_id, 0) + 1
        if self.outages.get(request.candidate_id, 0) > 0:
            self.outages[request.candidate_id] -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "ingest is restarting")
        found = self.candidates.get(request.candidate_id)
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "candidate not found")
        assert found is not None
        return found


@dataclass
class MatcherEnv:
    """A running matcher, its fake ingest, a client, NATS and a pool on the matcher's schema."""

    stub: pb_grpc.MatcherServiceStub
    ingest: FakeIngest
    nc: NatsClient
    js: JetStreamContext
    pool: asyncpg.Pool

    async def publish_ingested(
        self,
        batch_id: str,
        candidate_id: str,
        account_id: int = 7,
        event_id: str | None = None,
        msg_id: str | None = None,
        batch_created: dt.datetime | None = None,
    ) -> str:
        """Publishes `ingest.candidate.ingested` as ingest's relay would (CloudEvents headers)."""
        eid = event_id or str(uuid.uuid4())
        payload = ingest_events.CandidateIngested(candidate_id=candidate_id, batch_id=batch_id, account_id=account_id)
        if batch_created is not None:
            payload.batch_create_time.FromDatetime(batch_created)
        headers = cloudevent_headers(
            eid, payload.DESCRIPTOR.full_name, "cvmatch/ingest", dt.datetime.now(dt.UTC), "ingest.candidate.ingested"
        )
        headers["Nats-Msg-Id"] = msg_id or eid
        await self.js.publish("ingest.candidate.ingested", payload.SerializeToString(), headers=headers)
        return eid

    async def publish_ingest_failed(self, batch_id: str, candidate_id: str) -> None:
        """Publishes `ingest.candidate.failed` for a file ingest could not use."""
        eid = str(uuid.uuid4())
        payload = ingest_events.CandidateFailed(
            candidate_id=candidate_id,
            batch_id=batch_id,
            account_id=7,
            outcome=batch_pb2.CANDIDATE_OUTCOME_PDF_ENCRYPTED,
            message="the PDF is encrypted",
        )
        headers = cloudevent_headers(
            eid, payload.DESCRIPTOR.full_name, "cvmatch/ingest", dt.datetime.now(dt.UTC), "ingest.candidate.failed"
        )
        await self.js.publish("ingest.candidate.failed", payload.SerializeToString(), headers=headers)

    async def matcher_events(self, batch_id: str, idle: float = 0.5) -> list[tuple[str, dict[str, str], Payload]]:
        """Every event on the MATCHER stream about ``batch_id``: (subject, headers, payload)."""
        sub = await self.js.subscribe("matcher.candidate.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        out: list[tuple[str, dict[str, str], Payload]] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=idle)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                payload: Payload
                if msg.subject == "matcher.candidate.matched":
                    payload = matcher_events.CandidateMatched.FromString(msg.data)
                else:
                    payload = matcher_events.CandidateMatchFailed.FromString(msg.data)
                if payload.batch_id == batch_id:
                    out.append((msg.subject, dict(msg.headers or {}), payload))
        finally:
            await sub.unsubscribe()
        return out

    async def settled(self, timeout: float = 30.0) -> None:
        """Waits until every published ingest event is acknowledged and every outbox row is relayed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            busy = 0
            for durable in ("matcher__ingest_candidate_ingested", "matcher__ingest_candidate_failed"):
                try:
                    info = await self.js.consumer_info("INGEST", durable)
                except nats.js.errors.NotFoundError:
                    busy += 1
                    continue
                busy += info.num_pending + info.num_ack_pending
            busy += await self.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if busy == 0:
                return
            assert asyncio.get_running_loop().time() < deadline, "matcher did not settle in time"
            await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def matcher_env(postgres_server: Postgres, nats_server: Nats) -> AsyncIterator[MatcherEnv]:
    """One matcher service for the session (the engine loads once), on its own database."""
    nats_url = nats_server.url
    database_url = postgres_server.create_database(f"matcher_service_{uuid.uuid4().hex[:8]}")
    ingest = FakeIngest()  # type: ignore[abstract]
    ingest_server = grpc.aio.server()
    ingest_grpc.add_IngestServiceServicer_to_server(ingest, ingest_server)
    ingest_port = ingest_server.add_insecure_port("127.0.0.1:0")
    await ingest_server.start()
    port = free_port()
    settings = Settings.from_env(
        Env(
            {
                "DATABASE_URL": database_url,
                "NATS_URL": nats_url,
                "MATCHER_GRPC_PORT": str(port),
                "INGEST_ADDR": f"127.0.0.1:{ingest_port}",
                "OUTBOX_POLL_SECONDS": "0.05",
                "DB_POOL_MAX": "10",
                "MATCHER_CONCURRENCY": "4",
                "EVENT_MAX_DELIVERIES": "3",
            }
        )
    )
    await migrate(settings.common, MIGRATIONS)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings.common, build(settings), ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 60)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    nc = await nats.connect(nats_url)
    pool = await create_pool(settings.common)
    try:
        yield MatcherEnv(pb_grpc.MatcherServiceStub(channel), ingest, nc, nc.jetstream(), pool)
    finally:
        await pool.close()
        await nc.close()
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, 30)
        await ingest_server.stop(None)
