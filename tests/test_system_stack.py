"""The whole system as `make run` starts it: five services SERVING behind the real Envoy."""

from __future__ import annotations

import signal
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.testing.stack import SERVICES, Stack, check_health


def test_every_service_is_serving(stack: Stack) -> None:
    for svc in SERVICES:
        assert check_health(stack.address(svc)) == health_pb2.HealthCheckResponse.SERVING, svc


def test_rest_through_envoy_reaches_gateway_and_billing(stack: Stack, api_key: str) -> None:
    anonymous = httpx.get(f"{stack.url}/api/credits/balance")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "INVALID_API_KEY"
    assert anonymous.json()["detail"] == "Invalid or missing API key"
    for headers in ({"X-API-Key": api_key}, {"Authorization": f"Bearer {api_key}"}):
        r = httpx.get(f"{stack.url}/api/credits/balance", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["balance"] >= 1
        assert int(r.headers["x-ratelimit-limit"]) > 0
        assert int(r.headers["x-ratelimit-remaining"]) >= 0
        assert int(r.headers["x-ratelimit-reset"]) > time.time() - 1
        assert r.headers["x-request-id"]


def test_api_key_lifecycle_through_the_public_api(stack: Stack, api_key: str) -> None:
    admin = {"Authorization": f"Bearer {api_key}"}
    created = httpx.post(f"{stack.url}/v1/auth/api-keys", headers=admin,
                         json={"name": "Production API Key", "scopes": ["match:read"],
                               "expires_at": "2099-12-31T23:59:59Z"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["success"] is True
    secret = body["data"]["key"]
    assert secret.startswith("cvm_live_")
    assert body["meta"]["request_id"] == created.headers["x-request-id"]
    ok = httpx.get(f"{stack.url}/api/credits/balance", headers={"X-API-Key": secret})
    assert ok.status_code == 200
    # A read-only key may not create keys.
    refused = httpx.post(f"{stack.url}/v1/auth/api-keys", headers={"X-API-Key": secret}, json={"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "MISSING_PERMISSION"
    revoked = httpx.delete(f"{stack.url}/v1/auth/api-keys/{body['data']['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        r = httpx.get(f"{stack.url}/api/credits/balance", headers={"X-API-Key": secret})
        if r.status_code == 401:
            break
        time.sleep(0.1)
    assert r.status_code == 401


def test_validation_error_names_the_field(stack: Stack, api_key: str) -> None:
    r = httpx.post(f"{stack.url}/v1/auth/api-keys", headers={"X-API-Key": api_key}, json={"name": " "})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "name"


def test_unknown_route_is_json_404(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/api/v2/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_native_grpc_on_the_public_port(stack: Stack, api_key: str) -> None:
    with grpc.insecure_channel(stack.grpc_address) as channel:
        stub = gw_grpc.CreditsServiceStub(channel)
        resp = stub.GetCreditBalance(gw.GetCreditBalanceRequest(), metadata=(("x-api-key", api_key),), timeout=5)
        assert resp.balance >= 1
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetCreditBalance(gw.GetCreditBalanceRequest(), timeout=5)
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_sigterm_stops_a_service_cleanly(tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> None:
    # Stop and restart the notifier: it reports NOT_SERVING / disappears, exits 0, and comes back.
    proc = stack.procs["notifier"][0]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    stack.restart("notifier")
    stack.wait_healthy(30)
    assert check_health(stack.address("notifier")) == health_pb2.HealthCheckResponse.SERVING
