"""Limits shared by every gateway: two gateway processes behind the real Envoy, one billing, one database.

A Free key (60 requests per minute) gets exactly 60 successes out of 200 requests spread over both
gateways, the rest 429 RATE_LIMIT_EXCEEDED with a Retry-After that matches the window, and the
X-RateLimit-* headers count down; a revoked key is refused by every gateway within two seconds even
though each gateway caches authentications for a second.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.testing.stack import Stack

BALANCE = "/api/credits/balance"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("billing-edge"), gateway_replicas=2).start()
    try:
        yield s
    finally:
        s.stop()


def _free_key(stack: Stack, name: str) -> str:
    account = json.loads(stack.run_billing("admin", "create-account", "--name", name, "--plan", "free",
                                           "--credits", "10"))["account"]
    assert account["limits"]["requests_per_minute"] == 60
    created = json.loads(stack.run_billing("admin", "create-key", "--account", str(account["account_id"])))
    secret: str = created["secret"]
    return secret


def _gateway_requests(stack: Stack) -> list[int]:
    """Requests Envoy sent to each gateway replica so far (from its admin endpoint)."""
    text = httpx.get(f"http://127.0.0.1:{stack.admin_port}/clusters", timeout=5).text
    counts = []
    for port in stack.ports["gateway"]:
        m = re.search(rf"::127\.0\.0\.1:{port}::rq_total::(\d+)", text)
        assert m, f"gateway replica on {port} is not in Envoy's clusters"
        counts.append(int(m.group(1)))
    return counts


def test_two_gateways_enforce_one_per_minute_limit(stack: Stack) -> None:
    secret = _free_key(stack, "free-edge")
    before = _gateway_requests(stack)
    start = time.time()

    def client(_: int) -> list[httpx.Response]:
        with httpx.Client(base_url=stack.url, timeout=20) as c:
            return [c.get(BALANCE, headers={"X-API-Key": secret}) for _ in range(100)]

    # Two clients at a time: the Free plan allows 5 concurrent requests, so only the per-minute limit binds.
    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = [r for batch in pool.map(client, range(2)) for r in batch]
    elapsed = time.time() - start
    assert elapsed < 50, "the test relies on all 200 requests falling in one window"

    spread = [after - b for after, b in zip(_gateway_requests(stack), before, strict=True)]
    assert sum(spread) >= 200 and min(spread) >= 50, spread  # round robin: both gateways served

    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(ok) == 60, [r.status_code for r in responses]
    assert {r.status_code for r in refused} == {429}
    for r in responses:
        assert r.headers["x-ratelimit-limit"] == "60"
    # The headers count down 59, 58, ..., 0 over the admitted requests, across both gateways.
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok) == list(range(60))
    first_reset = min(int(r.headers["x-ratelimit-reset"]) for r in ok)
    assert start + 59 <= first_reset <= start + elapsed + 61
    now = time.time()
    for r in refused:
        body = r.json()
        assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert r.headers["x-ratelimit-remaining"] == "0"
        retry_after = int(r.headers["retry-after"])
        reset = int(r.headers["x-ratelimit-reset"])
        # Retry-After is when the oldest admitted request leaves the window: about a minute after the
        # first success, which is also what X-RateLimit-Reset says.
        assert 60 - elapsed - 2 <= retry_after <= 60
        assert abs(reset - first_reset) <= 1
        assert abs((reset - now) - retry_after) <= elapsed + 2


def _grpc_balance(address: str, secret: str) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        try:
            gw_grpc.CreditsServiceStub(channel).GetCreditBalance(
                gw.GetCreditBalanceRequest(), metadata=(("x-api-key", secret),), timeout=5)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def test_revoked_key_is_refused_by_every_gateway_within_two_seconds(stack: Stack, api_key: str) -> None:
    admin = {"X-API-Key": api_key}
    created = httpx.post(f"{stack.url}/v1/auth/api-keys", headers=admin,
                         json={"name": "to revoke", "scopes": ["match:read"]}, timeout=10)
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["data"]["key"], created.json()["data"]["id"]
    gateways = [stack.address("gateway", i) for i in range(stack.gateway_replicas)]
    # Every gateway has the key in its authentication cache.
    for address in gateways:
        assert _grpc_balance(address, secret) == grpc.StatusCode.OK
    assert httpx.get(f"{stack.url}{BALANCE}", headers={"X-API-Key": secret}).status_code == 200

    revoked = httpx.delete(f"{stack.url}/v1/auth/api-keys/{key_id}", headers=admin, timeout=10)
    assert revoked.status_code == 200, revoked.text
    t0 = time.monotonic()
    refused_after: dict[str, float] = {}
    while len(refused_after) < len(gateways) and time.monotonic() - t0 < 5:
        for address in gateways:
            if address not in refused_after and _grpc_balance(address, secret) == grpc.StatusCode.UNAUTHENTICATED:
                refused_after[address] = time.monotonic() - t0
        time.sleep(0.05)
    assert set(refused_after) == set(gateways), refused_after
    assert max(refused_after.values()) < 2.0, refused_after
    # Through Envoy too, and for good: never accepted again on any gateway.
    for _ in range(6):
        r = httpx.get(f"{stack.url}{BALANCE}", headers={"X-API-Key": secret})
        assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_API_KEY"
    for address in gateways:
        assert _grpc_balance(address, secret) == grpc.StatusCode.UNAUTHENTICATED
