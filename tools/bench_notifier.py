"""Webhook delivery throughput: two notifier processes delivering to a fast local HTTPS receiver.

Starts PostgreSQL and nats-server (cvmatch.testing.servers), migrates the notifier schema, starts two
`python -m cvmatch.notifier serve` processes sharing it (loopback egress allowed, a private test CA
trusted), registers E endpoints (one account) pointing at a receiver on 127.0.0.1 that answers 204 at
once, publishes K `billing.credits.low` events on NATS, and waits until all E x K deliveries arrived.
Prints deliveries per second from the first publish to the last delivery, duplicates (must be 0), how
the work split between the two processes, and the attempt latency the notifier logged (p50 / p95).

Usage: .venv/bin/python tools/bench_notifier.py [--endpoints 10] [--events 200] [--workers 16]
Everything (receiver, Postgres, NATS, both notifiers, this driver) shares this machine's cores; the
figures include that competition and TLS on every delivery (one connection per attempt).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import grpc
import nats
import trustme

from cvmatch.api.billing.v1 import events_pb2 as billing_events
from cvmatch.api.notifier.v1 import notifier_service_pb2 as pb
from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from cvmatch.platform.events import cloudevent_headers
from cvmatch.testing.servers import Nats, Postgres, free_port, wait_for_port


def start_notifiers(env: dict[str, str], ports: list[int], workdir: Path) -> list[subprocess.Popen[bytes]]:
    """Migrates the schema and starts one notifier process per port; returns once they listen."""
    subprocess.run([sys.executable, "-m", "cvmatch.notifier", "migrate"], env=env, check=True, capture_output=True)
    procs = []
    for i, grpc_port in enumerate(ports):
        with open(workdir / f"notifier-{i}.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "cvmatch.notifier", "serve"],
                                          env={**env, "NOTIFIER_GRPC_PORT": str(grpc_port)}, stdout=log,
                                          stderr=log, start_new_session=True))
    for grpc_port, proc in zip(ports, procs, strict=True):
        wait_for_port(grpc_port, 60, proc, "notifier")
    return procs


class Receiver:
    """Counts (path, webhook-id) pairs and answers 204 immediately."""

    def __init__(self, expected: int) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        self.last_at = 0.0
        self.expected = expected
        self.all_arrived = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.seen[(target, headers.get("webhook-id", ""))] += 1
            self.last_at = time.monotonic()
            if sum(self.seen.values()) >= self.expected:
                self.all_arrived.set()
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cvmatch-bench-notifier-"))
    pg = Postgres(workdir / "pg").start()
    nats_server = Nats(workdir / "nats").start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        database_url = pg.create_database("bench")
        ca = trustme.CA()
        ca_file = workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        expected = args.endpoints * args.events
        receiver = Receiver(expected)
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0, ssl=context, backlog=1024)
        port = server.sockets[0].getsockname()[1]

        env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_server.url, "CVMATCH_ENV": "test",
               "NOTIFIER_ALLOW_LOOPBACK": "true", "NOTIFIER_CA_FILE": str(ca_file), "LOG_LEVEL": "WARNING",
               "NOTIFIER_WORKERS": str(args.workers), "NOTIFIER_ENDPOINT_CONCURRENCY": str(args.workers),
               "DB_POOL_MAX": str(args.workers + 4)}
        ports = [free_port(), free_port()]
        procs.extend(await asyncio.to_thread(start_notifiers, env, ports, workdir))
        await asyncio.sleep(1.0)  # consumers bound

        account = 42
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
            stub = pb_grpc.NotifierServiceStub(channel)
            for i in range(args.endpoints):
                await stub.CreateEndpoint(pb.CreateEndpointRequest(
                    account_id=account, url=f"https://127.0.0.1:{port}/e{i}", events=["credits.low"]))

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        started = time.monotonic()
        for i in range(args.events):
            eid = str(uuid.uuid4())
            message = billing_events.CreditsLow(account_id=account, available=i, threshold=args.events)
            headers = cloudevent_headers(eid, message.DESCRIPTOR.full_name, "bench", dt.datetime.now(dt.UTC),
                                         "billing.credits.low")
            await js.publish("billing.credits.low", message.SerializeToString(), headers=headers)
        published = time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.all_arrived.wait(), args.timeout)
        elapsed = receiver.last_at - started
        await asyncio.sleep(1.0)  # late duplicates would show up here
        await nc.drain()

        conn = await asyncpg.connect(database_url)
        try:
            stats = await conn.fetchrow(
                """SELECT count(*) AS attempts,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
                          count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS ok
                   FROM notifier.delivery_attempts""")
        finally:
            await conn.close()
        assert stats is not None
        delivered = len(receiver.seen)
        duplicates = sum(receiver.seen.values()) - delivered
        print(f"notifier processes:        2 x {args.workers} workers")
        print(f"endpoints x events:        {args.endpoints} x {args.events} = {expected} deliveries")
        print(f"events published in:       {published:.2f} s")
        print(f"delivered (unique):        {delivered} of {expected}, duplicates {duplicates}")
        print(f"first publish -> last 2xx: {elapsed:.2f} s")
        print(f"throughput:                {delivered / elapsed:.0f} deliveries/s")
        print(f"attempts logged:           {stats['attempts']} ({stats['ok']} 2xx), latency p50 "
              f"{stats['p50']:.0f} ms, p95 {stats['p95']:.0f} ms")
        server.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        nats_server.cleanup()
        pg.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300.0)
    asyncio.run(main(parser.parse_args()))
