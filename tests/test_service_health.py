"""A service's gRPC health follows its dependencies and its shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from grpc_health.v1 import health_pb2

from cvmatch.testing.servers import Nats, free_port
from cvmatch.testing.stack import check_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def wait_for(address: str, status: int, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check_health(address) == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{address} never reached health status {status}")


def test_not_serving_while_nats_is_down(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "nats").mkdir()
    nats = Nats(tmp_path / "nats").start()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats.url, "NOTIFIER_GRPC_PORT": str(port),
           "HEALTH_CHECK_INTERVAL_SECONDS": "0.2", "CVMATCH_ENV": "test"}
    restarted: Nats | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([sys.executable, "-m", "cvmatch.notifier", "migrate"], env=env, check=True,
                       capture_output=True)
        log = open(tmp_path / "notifier.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "cvmatch.notifier"], env=env, stdout=log, stderr=log)
        address = f"127.0.0.1:{port}"
        wait_for(address, SERVING, 30)
        nats.stop()
        wait_for(address, NOT_SERVING, 10)
        restarted = Nats(tmp_path / "nats", port=nats.port).start()
        wait_for(address, SERVING, 20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        # Whatever failed, no server outlives the test.
        if proc is not None and proc.poll() is None:
            proc.kill()
        nats.stop()
        if restarted is not None:
            restarted.stop()


def test_two_service_processes_migrate_at_the_same_moment(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    procs = [subprocess.Popen([sys.executable, "-m", "cvmatch.ingest", "migrate"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    import asyncio

    import asyncpg

    async def check() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'ingest'") == 1
            versions = [r["version"] for r in await conn.fetch(
                "SELECT version FROM ingest.schema_migrations ORDER BY version")]
            assert versions == sorted(set(versions)) and "0001" in versions and "platform_0001" in versions
            assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'ingest' "
                                       "AND tablename = 'batches'") == 1
        finally:
            await conn.close()

    asyncio.run(check())
