"""The public edge, verified with the real Envoy: transcoding, status codes gRPC cannot express, the
seeds' error envelope, local replies, and native gRPC on the same port.

The backend here is a gRPC server built with the platform's interceptor whose methods raise the
platform's domain errors; the product endpoints are tested end to end elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2, status_pb2

from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.platform import errors
from cvmatch.platform.interceptors import ErrorInterceptor
from cvmatch.testing.edge import render_envoy_config
from cvmatch.testing.servers import Envoy, free_port


def _md(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return str(v)
    return None


class Credits(gw_grpc.CreditsServiceServicer):
    async def GetCreditBalance(self, request: gw.GetCreditBalanceRequest,
                               context: grpc.aio.ServicerContext[Any, Any]) -> gw.GetCreditBalanceResponse:
        kind = _md(context, "x-test-error")
        if kind == "400":
            raise errors.invalid_input("The 'input_type' field is required", "input_type")
        if kind == "401":
            raise errors.unauthenticated()
        if kind == "402":
            raise errors.insufficient_credits("Insufficient credits: 3 needed, 1 available",
                                              needed="3", available="1")
        if kind == "404":
            raise errors.not_found("Batch job not found")
        if kind == "429":
            raise errors.rate_limited("Rate limit exceeded", retry_after_seconds=17)
        if kind == "500":
            raise RuntimeError("secret database password in exception text")
        await context.send_initial_metadata((("x-ratelimit-limit", "60"), ("x-ratelimit-remaining", "59")))
        return gw.GetCreditBalanceResponse(balance=5, available=5)


class Batches(gw_grpc.BatchJobsServiceServicer):
    async def SubmitBatchJob(self, request_iterator: AsyncIterator[httpbody_pb2.HttpBody],
                             context: grpc.aio.ServicerContext[Any, Any]) -> resources_pb2.BatchJob:
        size = 0
        content_type = ""
        async for part in request_iterator:
            content_type = content_type or part.content_type
            size += len(part.data)
        await context.send_initial_metadata((("x-cvmatch-http-status", "202"),))
        return resources_pb2.BatchJob(batch_job_id=f"{size}:{content_type.split(';')[0]}", status="pending")


class BackgroundServer:
    """A grpc.aio server on its own event loop thread (pytest's sync fixtures need a sync handle)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        from grpc_health.v1 import health_pb2_grpc
        from grpc_health.v1._async import HealthServicer

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = grpc.aio.server(interceptors=[ErrorInterceptor()])
        gw_grpc.add_CreditsServiceServicer_to_server(Credits(), server)
        gw_grpc.add_BatchJobsServiceServicer_to_server(Batches(), server)
        health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
        server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._ready.set()
        await self._stop.wait()
        await server.stop(0)

    def start(self) -> BackgroundServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def edge() -> Iterator[tuple[str, int]]:
    backend = BackgroundServer().start()
    grpc_port = backend.port
    http_port, admin_port = free_port(), free_port()
    envoy = Envoy(render_envoy_config(http_port, admin_port, {"gateway": [("127.0.0.1", grpc_port)]}),
                  http_port, admin_port).start()
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the health check marks the backend up
        r = httpx.get(f"{base}/api/credits/balance")
        if r.status_code == 200:
            break
        time.sleep(0.2)
    try:
        yield base, http_port
    finally:
        envoy.cleanup()
        backend.stop()


def test_envoy_config_validates() -> None:
    cfg = render_envoy_config(18080, 19901, {"gateway": [("127.0.0.1", 50050)], "ingest": [("127.0.0.1", 50051)]})
    result = Envoy.validate(cfg)
    assert result.returncode == 0, result.stderr


def test_transcoded_call_reaches_gateway(edge: tuple[str, int]) -> None:
    base, _ = edge
    r = httpx.get(f"{base}/api/credits/balance")
    assert r.status_code == 200
    assert r.json() == {"balance": 5, "available": 5, "reserved": 0, "used": 0}
    assert r.headers["x-ratelimit-limit"] == "60"
    assert r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("400", 400, "INVALID_INPUT"), ("401", 401, "INVALID_API_KEY"), ("402", 402, "INSUFFICIENT_CREDITS"),
     ("404", 404, "NOT_FOUND"), ("429", 429, "RATE_LIMIT_EXCEEDED"), ("500", 500, "INTERNAL")],
)
def test_errors_carry_seed_envelope_and_status(edge: tuple[str, int], kind: str, status: int, code: str) -> None:
    base, _ = edge
    r = httpx.get(f"{base}/api/credits/balance", headers={"x-test-error": kind, "x-request-id": f"req-{kind}"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"]["code"] == code
    assert body["detail"] == body["error"]["message"]
    assert body["request_id"] == f"req-{kind}"
    assert body["success"] is False and body["meta"]["request_id"] == f"req-{kind}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["meta"]["timestamp"])
    assert r.headers["x-request-id"] == f"req-{kind}"
    assert "grpc-status-details-bin" not in r.headers
    assert "x-cvmatch-error-body" not in r.headers
    if kind == "400":
        assert body["error"]["details"]["field"] == "input_type"
        assert body["error"]["details"]["fields"] == {"input_type": "The 'input_type' field is required"}
    if kind == "429":
        assert r.headers["retry-after"] == "17"
    if kind == "500":
        assert "secret" not in r.text and "RuntimeError" not in r.text


def test_status_codes_grpc_cannot_express(edge: tuple[str, int]) -> None:
    base, _ = edge
    r = httpx.post(f"{base}/api/v1/batch-jobs", files={"candidate_source_file": ("a.zip", b"x" * 3000)},
                   data={"input_type": "ZIP_FILE"})
    assert r.status_code == 202, r.text
    body = r.json()
    size, content_type = body["batch_job_id"].split(":")
    assert int(size) > 3000 and content_type == "multipart/form-data"
    assert body["status"] == "pending"
    assert body["total_candidates"] == 0  # primitive fields are always printed


def test_unknown_path_is_json_404(edge: tuple[str, int]) -> None:
    base, _ = edge
    r = httpx.get(f"{base}/api/nope")
    assert r.status_code == 404
    body = r.json()
    assert body["error"]["code"] == "NOT_FOUND"
    assert "/api/nope" in body["error"]["message"]
    assert r.headers["x-request-id"]
    # Envoy's own replies carry the same envelope as the gateway's.
    assert body["detail"] == body["error"]["message"] and body["request_id"] == r.headers["x-request-id"]
    assert body["success"] is False and body["meta"]["request_id"] == body["request_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["meta"]["timestamp"])


def test_unknown_query_parameter_is_400(edge: tuple[str, int]) -> None:
    base, _ = edge
    r = httpx.get(f"{base}/api/credits/balance?bogus=1")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "INVALID_INPUT"


def test_healthz(edge: tuple[str, int]) -> None:
    base, _ = edge
    r = httpx.get(f"{base}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_native_grpc_on_the_same_port(edge: tuple[str, int]) -> None:
    _, port = edge

    async def call() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gw_grpc.CreditsServiceStub(channel)
            ok = await stub.GetCreditBalance(gw.GetCreditBalanceRequest())
            assert ok.balance == 5
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await stub.GetCreditBalance(gw.GetCreditBalanceRequest(), metadata=(("x-test-error", "402"),))
            assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            md = dict(exc.value.trailing_metadata() or ())
            status = status_pb2.Status.FromString(md["grpc-status-details-bin"])
            info = error_details_pb2.ErrorInfo()
            status.details[0].Unpack(info)
            assert info.reason == "INSUFFICIENT_CREDITS"
            assert json.loads(md["x-cvmatch-error-body"])["error"]["code"] == "INSUFFICIENT_CREDITS"

    asyncio.run(call())


def test_kubernetes_config_is_current_and_valid(tmp_path: Any) -> None:
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    committed = (repo / "deploy" / "k8s" / "envoy.yaml").read_text()
    import subprocess
    import sys

    out = tmp_path / "envoy.yaml"
    subprocess.run([sys.executable, str(repo / "tools" / "render_envoy.py"), "--k8s", "--out", str(out)], check=True,
                   capture_output=True)
    assert out.read_text() == committed, "deploy/k8s/envoy.yaml is stale: run tools/render_envoy.py --k8s"
    # Validate with local files in place of the mounted ones (validation opens the descriptor and Lua).
    local = committed.replace("/etc/envoy/cvmatch.pb", str(repo / "deploy" / "envoy" / "cvmatch.pb")).replace(
        "/etc/envoy/cvmatch_edge.lua", str(repo / "deploy" / "envoy" / "cvmatch_edge.lua"))
    result = Envoy.validate(local)
    assert result.returncode == 0, result.stderr


def test_a_backend_that_starts_after_envoy_is_noticed_within_seconds() -> None:
    grpc_port_holder = BackgroundServer()
    http_port, admin_port = free_port(), free_port()
    envoy = Envoy(render_envoy_config(http_port, admin_port, {"gateway": [("127.0.0.1", grpc_port_holder.port)]}),
                  http_port, admin_port).start()
    try:
        first = httpx.get(f"http://127.0.0.1:{http_port}/api/credits/balance")
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "UNAVAILABLE"
        grpc_port_holder.start()
        started = time.monotonic()
        while time.monotonic() - started < 10:
            if httpx.get(f"http://127.0.0.1:{http_port}/api/credits/balance").status_code == 200:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert elapsed < 10, "Envoy did not notice the late backend"
    finally:
        envoy.cleanup()
        grpc_port_holder.stop()
