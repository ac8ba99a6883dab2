"""Benchmark: the matcher service end to end — events in, results stored and announced — and its reads.

Starts PostgreSQL and nats-server (`cvmatch.testing.servers`), a stand-in for ingest's two RPCs (its
contract, served over real gRPC from memory), and the matcher service in this process. Publishes `--n`
`ingest.candidate.ingested` events for one batch of ~700-word CVs (generated from a fixed seed), then starts
the service and measures until every candidate has an outcome (result or failure, each with its outbox
event) and every event is relayed. Then times ListResults (a page of 100 plus the whole-batch statistics)
and GetResult.

Printed: candidates per second through the whole path (JetStream fetch, two ingest RPCs, parse + score in
the executor, one transaction with the outbox row, relay), read latencies, and the process's resident
memory. The engine's own speed on one core is `tools/bench_matcher_speed.py`.

    .venv/bin/python tools/bench_matcher_service.py [--n 300] [--concurrency 4] [--workers 2]

The machine is small and shared: say what else was running when you quote the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import nats
import psutil

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.ingest.v1 import ingest_service_pb2 as ingest_pb
from cvmatch.api.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from cvmatch.api.matcher.v1 import matcher_service_pb2 as pb
from cvmatch.api.matcher.v1 import matcher_service_pb2_grpc as pb_grpc
from cvmatch.matcher.app import MIGRATIONS, build
from cvmatch.matcher.config import Settings
from cvmatch.matcher.engine import MatchEngine
from cvmatch.platform.db import migrate
from cvmatch.platform.events import cloudevent_headers, ensure_streams
from cvmatch.platform.server import serve
from cvmatch.platform.settings import Env
from cvmatch.testing.filegen import BACKEND_JD, long_cv_text
from cvmatch.testing.servers import Nats, Postgres, free_port


class Ingest(ingest_grpc.IngestServiceServicer):
    """ingest's GetJobDescription / GetCandidateText from memory."""

    def __init__(self, jd: str, texts: dict[str, str]) -> None:
        self.jd = jd
        self.texts = texts

    async def GetJobDescription(
        self, request: ingest_pb.GetJobDescriptionRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb.GetJobDescriptionResponse:
        return ingest_pb.GetJobDescriptionResponse(text=self.jd)

    async def GetCandidateText(
        self, request: ingest_pb.GetCandidateTextRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb.GetCandidateTextResponse:
        return ingest_pb.GetCandidateTextResponse(
            text=self.texts[request.candidate_id],
            candidate=batch_pb2.Candidate(candidate_id=request.candidate_id, original_filename="cv.txt"),
        )


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(n: int, concurrency: int, workers: int, pg: Postgres, nats_server: Nats) -> None:
    rng = random.Random(7)
    batch = str(uuid.uuid4())
    texts = {str(uuid.uuid4()): long_cv_text(rng) for _ in range(n)}
    words = statistics.mean(len(t.split()) for t in texts.values())
    ingest_server = grpc.aio.server()
    ingest_grpc.add_IngestServiceServicer_to_server(Ingest(BACKEND_JD, texts), ingest_server)  # type: ignore[abstract]
    ingest_port = ingest_server.add_insecure_port("127.0.0.1:0")
    await ingest_server.start()
    port = free_port()
    settings = Settings.from_env(
        Env(
            {
                "DATABASE_URL": pg.create_database("bench_matcher"),
                "NATS_URL": nats_server.url,
                "MATCHER_GRPC_PORT": str(port),
                "INGEST_ADDR": f"127.0.0.1:{ingest_port}",
                "LOG_LEVEL": "WARNING",
                "MATCHER_CONCURRENCY": str(concurrency),
                "MATCHER_SCORE_WORKERS": str(workers),
                "DB_POOL_MAX": str(concurrency + 8),
            }
        )
    )
    await migrate(settings.common, MIGRATIONS)
    MatchEngine.load()  # outside the timing: a process loads it once at start-up

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    for cid in texts:
        payload = ingest_events.CandidateIngested(candidate_id=cid, batch_id=batch, account_id=1)
        eid = str(uuid.uuid4())
        headers = cloudevent_headers(
            eid, payload.DESCRIPTOR.full_name, "bench", dt.datetime.now(dt.UTC), "ingest.candidate.ingested"
        )
        await js.publish("ingest.candidate.ingested", payload.SerializeToString(), headers=headers)

    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings.common, build(settings), ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 120)
    started = time.perf_counter()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.MatcherServiceStub(channel)
    try:
        while True:
            resp = await stub.ListResults(pb.ListResultsRequest(batch_id=batch, limit=1))
            if resp.summary_stats.total_candidates >= n:
                break
            await asyncio.sleep(0.02)
        scored_at = time.perf_counter() - started
        # Every outcome's event relayed to JetStream as well.
        for _ in range(30_000):
            if (await js.stream_info("MATCHER")).state.messages >= n:
                break
            await asyncio.sleep(0.02)
        relayed_at = time.perf_counter() - started
        stats = resp.summary_stats
        print(f"candidates: {n} (~{words:.0f} words each), concurrency {concurrency}, score workers {workers}")
        print(
            f"scored + stored: {scored_at:.2f} s -> {n / scored_at:.1f} candidates/s; "
            f"all events relayed at {relayed_at:.2f} s -> {n / relayed_at:.1f} candidates/s"
        )
        print(
            f"outcomes: {stats.successful_matches} scored, {stats.error_count} failed, "
            f"average {stats.average_score}, highest {stats.highest_score}"
        )
        for label, make in (
            ("ListResults limit=100", lambda: stub.ListResults(pb.ListResultsRequest(batch_id=batch, limit=100))),
            ("GetResult", lambda: stub.GetResult(pb.GetResultRequest(candidate_id=next(iter(texts))))),
        ):
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                await make()
                times.append(time.perf_counter() - t0)
            print(f"{label}: p50 {pct(times, 0.5):.1f} ms, p95 {pct(times, 0.95):.1f} ms (batch of {n})")
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"resident memory of this process (service + publisher + stand-in ingest): {rss:.0f} MB")
    finally:
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, 30)
        await nc.close()
        await ingest_server.stop(None)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark on servers started for it."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-matcher-") as tmp:
        for sub in ("pg", "nats"):
            (Path(tmp) / sub).mkdir()
        pg = Postgres(Path(tmp) / "pg").start()
        nats_server = Nats(Path(tmp) / "nats").start()
        try:
            asyncio.run(run(args.n, args.concurrency, args.workers, pg, nats_server))
        finally:
            nats_server.cleanup()
            pg.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
