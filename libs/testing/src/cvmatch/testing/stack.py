"""The whole system as child processes: PostgreSQL, nats-server, the five services and Envoy.

`make run` (tools/devstack.py) and the end-to-end tests both use this, so what the tests exercise is
what a developer runs. Every server binds to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cvmatch.testing.edge import render_envoy_config
from cvmatch.testing.servers import Envoy, Nats, Postgres, free_port

SERVICES = ("billing", "ingest", "matcher", "notifier", "gateway")
WITH_DATABASE = ("billing", "ingest", "matcher", "notifier")


def check_health(address: str, timeout: float = 1.0) -> int:
    """The overall health status of a gRPC server (SERVING = 1), or -1 when unreachable."""
    with grpc.insecure_channel(address) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                             timeout=timeout)
            return int(resp.status)
        except grpc.RpcError:
            return -1


class Stack:
    """Starts and stops everything; `url`, `grpc_address` and `env` describe the running system."""

    def __init__(self, workdir: Path | None = None, *, http_port: int | None = None,
                 database_url: str | None = None, nats_url: str | None = None,
                 extra_env: Mapping[str, str] | None = None, gateway_replicas: int = 1) -> None:
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="cvmatch-stack-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http_port = http_port or free_port()
        self.admin_port = free_port()
        self._database_url = database_url
        self._nats_url = nats_url
        self.extra_env = dict(extra_env or {})
        self.gateway_replicas = gateway_replicas
        self.postgres: Postgres | None = None
        self.nats: Nats | None = None
        self.envoy: Envoy | None = None
        self.ports: dict[str, list[int]] = {}
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.env: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def address(self, service: str, replica: int = 0) -> str:
        return f"127.0.0.1:{self.ports[service][replica]}"

    def start(self, timeout: float = 120.0) -> Stack:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        if self._database_url is None:
            self.postgres = Postgres(self.dir / "postgres").start()
            self._database_url = self.postgres.create_database("cvmatch")
        if self._nats_url is None:
            self.nats = Nats(self.dir / "nats").start()
            self._nats_url = self.nats.url
        for svc in SERVICES:
            self.ports[svc] = [free_port() for _ in range(self.gateway_replicas if svc == "gateway" else 1)]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_GRPC_PORT")},
            "DATABASE_URL": self._database_url,
            "NATS_URL": self._nats_url,
            "INGEST_ADDR": self.address("ingest"),
            "MATCHER_ADDR": self.address("matcher"),
            "BILLING_ADDR": self.address("billing"),
            "NOTIFIER_ADDR": self.address("notifier"),
            "CVMATCH_ENV": "local",
            "BILLING_KEY_PEPPER": os.environ.get("BILLING_KEY_PEPPER", "local-development-pepper-not-secret"),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        migrations = [self._spawn(svc, ["migrate"], f"{svc}-migrate") for svc in WITH_DATABASE]
        for svc, proc in zip(WITH_DATABASE, migrations, strict=True):
            if proc.wait(timeout) != 0:
                raise RuntimeError(f"{svc} migrations failed; see {self.dir / (svc + '-migrate.log')}")
        for svc in SERVICES:
            for i, port in enumerate(self.ports[svc]):
                env = {f"{svc.upper()}_GRPC_PORT": str(port)}
                self.procs.setdefault(svc, []).append(self._spawn(svc, ["serve"], f"{svc}-{i}", env))
        self.wait_healthy(timeout)
        backends = {svc: [("127.0.0.1", p) for p in self.ports[svc]] for svc in SERVICES}
        self.envoy = Envoy(render_envoy_config(self.http_port, self.admin_port, backends),
                           self.http_port, self.admin_port, self.dir / "envoy").start()
        self._wait_edge(timeout)

    def _spawn(self, svc: str, args: list[str], log_name: str,
               env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{log_name}.log", "ab")
        return subprocess.Popen([sys.executable, "-m", f"cvmatch.{svc}", *args],
                                env={**self.env, **(env or {})}, stdout=log, stderr=log,
                                start_new_session=True)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until every service replica answers SERVING."""
        deadline = time.monotonic() + timeout
        for svc in SERVICES:
            for i, port in enumerate(self.ports[svc]):
                while check_health(f"127.0.0.1:{port}") != health_pb2.HealthCheckResponse.SERVING:
                    proc = self.procs[svc][i]
                    if proc.poll() is not None:
                        raise RuntimeError(f"{svc} exited with {proc.returncode}; see {self.dir}/{svc}-{i}.log")
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{svc} not SERVING within {timeout}s; see {self.dir}/{svc}-{i}.log")
                    time.sleep(0.1)

    def _wait_edge(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                # Any answer from the gateway (401 without a key) proves Envoy routes to a healthy backend.
                r = httpx.get(f"{self.url}/api/credits/balance", timeout=2.0)
                if r.status_code == 401:
                    return
            time.sleep(0.2)
        raise TimeoutError("Envoy did not reach the gateway in time")

    def run_billing(self, *args: str) -> str:
        """Runs a billing admin command against this stack's database; returns its stdout."""
        out = subprocess.run([sys.executable, "-m", "cvmatch.billing", *args], env=self.env,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"billing {' '.join(args)} failed: {out.stderr[-2000:]}")
        return out.stdout

    def kill(self, svc: str, replica: int = 0, sig: int = signal.SIGKILL) -> None:
        """Kills one service process (for crash tests)."""
        proc = self.procs[svc][replica]
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        proc.wait(30)

    def restart(self, svc: str, replica: int = 0) -> None:
        """Starts a killed service process again on the same port."""
        port = self.ports[svc][replica]
        self.procs[svc][replica] = self._spawn(svc, ["serve"], f"{svc}-{replica}",
                                               {f"{svc.upper()}_GRPC_PORT": str(port)})

    def stop(self) -> None:
        """SIGTERM to every process it started, then the servers."""
        for procs in self.procs.values():
            for p in procs:
                if p.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        p.send_signal(signal.SIGTERM)
        for procs in self.procs.values():
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.envoy is not None:
            self.envoy.stop()
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()
