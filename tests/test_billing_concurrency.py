"""Concurrent-request limits as the gateway enforces them: the gateway's Authenticator in a gRPC server
whose handler waits until the test lets it finish, against the real billing service on real Postgres.

A slot is taken with the rate-limit check, held while the RPC runs, released when it ends (through the
servicer context or the RPC's task), and a slot left by a crashed gateway expires by itself.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from cvmatch.api.billing.v1 import account_pb2
from cvmatch.api.billing.v1 import billing_service_pb2 as pb
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as pb_grpc
from cvmatch.billing.app import MIGRATIONS, build
from cvmatch.billing.config import Settings
from cvmatch.gateway.auth import Authenticator
from cvmatch.platform import errors
from cvmatch.platform.db import migrate
from cvmatch.platform.interceptors import ERROR_BODY_KEY, HTTP_STATUS_KEY, ErrorInterceptor
from cvmatch.platform.server import serve
from cvmatch.platform.settings import Env
from cvmatch.testing.servers import free_port

METHOD = "/test.Slow/Call"


@dataclass
class Harness:
    billing: pb_grpc.BillingServiceStub
    channel: grpc.aio.Channel  # to billing
    gateway: grpc.aio.Channel
    auth: Authenticator
    # Handlers wait on this before answering; `inside` counts handlers past authentication.
    gate: asyncio.Event
    inside: list[str]


@pytest.fixture
async def harness(database_url: str, nats_url: str) -> AsyncIterator[Harness]:
    port = free_port()
    settings = Settings.from_env(Env({
        "DATABASE_URL": database_url, "NATS_URL": nats_url, "CVMATCH_ENV": "test",
        "BILLING_KEY_PEPPER": "test-pepper-0123456789abcdef", "BILLING_GRPC_PORT": str(port)}))
    await migrate(settings.common, MIGRATIONS)
    ready, stop = asyncio.Event(), asyncio.Event()
    billing_task = asyncio.create_task(serve(settings.common, build(settings), ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 30)
    billing_channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    auth = Authenticator(billing_channel, cache_seconds=1.0)
    gate, inside = asyncio.Event(), []

    async def call(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        # The request says how the handler hands itself to the Authenticator, as the gateway's
        # servicers do: the context, or only its metadata.
        target = context if request == b"context" else context.invocation_metadata()
        await auth.authorize(target, "match:read")
        inside.append(request.decode())
        if request == b"fail":
            raise errors.invalid_input("the handler failed after authentication", "request")
        await gate.wait()
        return b"ok"

    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "test.Slow", {"Call": grpc.unary_unary_rpc_method_handler(call)})])
    gw_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway = grpc.aio.insecure_channel(f"127.0.0.1:{gw_port}")
    try:
        yield Harness(pb_grpc.BillingServiceStub(billing_channel), billing_channel, gateway, auth, gate, inside)
    finally:
        await gateway.close()
        await server.stop(1)
        await auth.close()
        await billing_channel.close()
        stop.set()
        await asyncio.wait_for(billing_task, 30)


async def _free_key(h: Harness) -> tuple[str, str]:
    acct = (await h.billing.CreateAccount(pb.CreateAccountRequest(name="conc", plan=account_pb2.PLAN_FREE))).account
    assert acct.limits.concurrent_requests == 5
    created = await h.billing.CreateApiKey(pb.CreateApiKeyRequest(account_id=acct.account_id, name="k"))
    return created.secret, created.api_key.key_id


def _call(h: Harness, secret: str, how: str) -> asyncio.Task[bytes]:
    stub = h.gateway.unary_unary(METHOD)

    async def run() -> bytes:
        return await stub(how.encode(), metadata=(("x-api-key", secret),), timeout=20)

    return asyncio.create_task(run())


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _until_free(h: Harness, key_id: str, timeout: float = 5.0) -> None:
    """Until every slot of the key is free again (releases travel to billing just after the RPC ends)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        probe = str(uuid.uuid4())
        rl = await h.billing.LeaseQuota(pb.LeaseQuotaRequest(key_id=key_id, lease_ids=[probe]))
        await h.billing.ReleaseLeases(pb.ReleaseLeasesRequest(lease_ids=[probe]))
        if rl.leases_granted == 1 and rl.concurrent_active == 1:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{rl.concurrent_active} slots still held"
        await asyncio.sleep(0.05)


async def _refused(h: Harness, secret: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await _call(h, secret, "context")
    return exc.value


async def test_a_key_runs_at_most_its_plans_concurrent_requests(harness: Harness) -> None:
    h = harness
    secret, key_id = await _free_key(h)
    running = [_call(h, secret, "context" if i % 2 else "metadata") for i in range(5)]
    await _until(lambda: len(h.inside) == 5)
    err = await _refused(h, secret)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(err.trailing_metadata() or ())
    assert trailers["retry-after"] == "1"
    assert trailers[HTTP_STATUS_KEY] == "429"
    body = json.loads(trailers[ERROR_BODY_KEY])
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"]["details"]["limit_type"] == "concurrent_requests"
    assert body["error"]["details"]["limit"] == "5"
    h.gate.set()
    assert await asyncio.gather(*running) == [b"ok"] * 5
    await _until_free(h, key_id)
    # Both ways of handing the RPC to the Authenticator free their slots when it ends.
    h.gate.clear()
    h.inside.clear()
    again = [_call(h, secret, "metadata") for _ in range(5)]
    await _until(lambda: len(h.inside) == 5)
    assert (await _refused(h, secret)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    h.gate.set()
    await asyncio.gather(*again)
    await _until_free(h, key_id)


async def test_failed_requests_free_their_slot_too(harness: Harness) -> None:
    h = harness
    secret, key_id = await _free_key(h)
    h.gate.set()
    # Handlers that fail after authentication still end their RPCs, and so free their slots.
    failing = await asyncio.gather(*(_call(h, secret, "fail") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.INVALID_ARGUMENT
               for e in failing), [(e.code(), e.details()) if isinstance(e, grpc.aio.AioRpcError) else e
                                   for e in failing]
    await _until_free(h, key_id)
    results = await asyncio.gather(*(_call(h, secret, "context") for _ in range(5)))
    assert results == [b"ok"] * 5


async def test_slots_of_a_crashed_gateway_expire(harness: Harness) -> None:
    h = harness
    secret, key_id = await _free_key(h)
    # A gateway that took all five slots with a short lease and died without releasing them.
    rl = await h.billing.LeaseQuota(pb.LeaseQuotaRequest(
        key_id=key_id, requests=5, lease_ids=[str(uuid.uuid4()) for _ in range(5)], lease_seconds=1))
    assert rl.granted == 5 and rl.leases_granted == 5
    h.gate.set()
    err = await _refused(h, secret)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await asyncio.sleep(1.2)
    assert await _call(h, secret, "context") == b"ok"


# --- blocks of allowance ---------------------------------------------------------------------------------


async def _plan_key(h: Harness, plan: int) -> tuple[str, str]:
    acct = (await h.billing.CreateAccount(pb.CreateAccountRequest(name="blocks", plan=plan))).account  # type: ignore[arg-type]
    created = await h.billing.CreateApiKey(pb.CreateApiKeyRequest(account_id=acct.account_id, name="k"))
    return created.secret, created.api_key.key_id


async def _admit(auth: Authenticator, secret: str) -> dict[str, str] | int:
    """One request through `auth` in a task of its own (its slot is freed when the task ends): the
    rate-limit headers, or the HTTP status of the refusal."""
    async def run() -> dict[str, str]:
        caller = await auth.authorize((("x-api-key", secret),), "match:read")
        return dict(caller.rate_headers)

    try:
        return await asyncio.create_task(run())
    except errors.DomainError as exc:
        return exc.http_status


def _count_calls(auth: Authenticator) -> list[int]:
    calls = [0]
    real = auth._stub.LeaseQuota

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    auth._stub.LeaseQuota = counting  # type: ignore[method-assign]
    return calls


async def _window_left(h: Harness, key_id: str) -> int:
    """What the key has left of its minute, read without counting a request (a LeaseQuota of nothing)."""
    return (await h.billing.LeaseQuota(pb.LeaseQuotaRequest(key_id=key_id))).remaining


async def test_requests_are_admitted_from_blocks_and_the_unspent_rest_comes_back(harness: Harness) -> None:
    h = harness
    secret, key_id = await _plan_key(h, account_pb2.PLAN_PRO)  # 300 per minute: blocks of up to 15
    calls = _count_calls(h.auth)
    results = [await _admit(h.auth, secret) for _ in range(100)]
    assert all(isinstance(r, dict) for r in results)
    # The countdown is exact however the requests were split into blocks.
    remaining = [int(r["x-ratelimit-remaining"]) for r in results if isinstance(r, dict)]
    assert remaining == list(range(299, 199, -1))
    assert all(r["x-ratelimit-limit"] == "300" for r in results if isinstance(r, dict))
    # Far fewer calls to billing than requests: blocks grew with the demand.
    assert calls[0] <= 25, calls[0]
    assert await _window_left(h, key_id) < 200  # the last block is not spent yet
    # Within about a second of the last request, what was granted and not spent is back in the window.
    await _until_async(lambda: _window_left(h, key_id), 200)


async def _until_async(read: Any, expected: int, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{value}, not {expected}"
        await asyncio.sleep(0.1)


async def test_two_gateways_admit_exactly_the_limit_from_blocks(harness: Harness) -> None:
    h = harness
    secret, key_id = await _plan_key(h, account_pb2.PLAN_FREE)  # 60 per minute, 5 at once
    other = Authenticator(h.channel, cache_seconds=1.0)
    try:
        results: list[dict[str, str] | int] = []
        for _ in range(50):  # two clients, each alternating between the gateways, two requests at a time
            results += await asyncio.gather(_admit(h.auth, secret), _admit(other, secret),
                                            _admit(other, secret), _admit(h.auth, secret))
    finally:
        await other.close()
    admitted = [r for r in results if isinstance(r, dict)]
    # Exactly the limit, however blocks were split between the gateways, and the rest refused (a request
    # refused for want of a slot gives its place in the countdown to the next one).
    assert len(admitted) == 60 and results.count(429) == 140
    assert sorted(int(r["x-ratelimit-remaining"]) for r in admitted) == list(range(60))
    assert await _window_left(h, key_id) == 0


async def test_requests_are_let_through_when_the_limiter_is_unreachable(harness: Harness) -> None:
    h = harness
    secret, _ = await _plan_key(h, account_pb2.PLAN_FREE)
    assert isinstance(await _admit(h.auth, secret), dict)  # the key is authenticated and cached

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())

    h.auth._stub.LeaseQuota = unreachable  # type: ignore[method-assign]
    # Past the block in hand, requests go through without rate-limit headers.
    results = [await _admit(h.auth, secret) for _ in range(10)]
    assert all(isinstance(r, dict) for r in results)
    assert not all("x-ratelimit-remaining" in r for r in results if isinstance(r, dict))


async def test_sixty_requests_alternating_between_two_gateways_are_all_admitted(harness: Harness) -> None:
    h = harness
    secret, key_id = await _plan_key(h, account_pb2.PLAN_FREE)  # 60 per minute
    other = Authenticator(h.channel, cache_seconds=1.0)
    try:
        # One client, exactly its limit, alternating gateways: near the end of the window blocks shrink
        # to one request and none is asked for ahead, so nothing idles at one gateway while the other
        # refuses.
        results = [await _admit(h.auth if i % 2 else other, secret) for i in range(60)]
        assert all(isinstance(r, dict) for r in results), [i for i, r in enumerate(results) if isinstance(r, int)]
        refused = await _admit(h.auth, secret)
        assert refused == 429
    finally:
        await other.close()
    assert await _window_left(h, key_id) == 0


async def test_a_request_cancelled_while_billing_is_slow_leaves_nothing_behind(harness: Harness) -> None:
    h = harness
    secret, key_id = await _plan_key(h, account_pb2.PLAN_PRO)  # 300 per minute, 20 at once
    auth = Authenticator(h.channel, cache_seconds=5.0)
    try:
        assert isinstance(await _admit(auth, secret), dict)  # the key is looked up and cached
        await _until_async(lambda: _window_left(h, key_id), 299)
        real = auth._stub.LeaseQuota

        async def slow(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.5)  # billing is slow; the client gives up meanwhile
            return await real(*args, **kwargs)

        auth._stub.LeaseQuota = slow  # type: ignore[method-assign]
        # The first request's lingering slot went back long ago; its block is settled: this one asks.
        await asyncio.sleep(1.5)
        task = asyncio.create_task(auth.authorize((("x-api-key", secret),), "match:read"))
        await asyncio.sleep(0.1)
        task.cancel()  # what grpc.aio does to a handler whose client went away
        await asyncio.gather(task, return_exceptions=True)
        auth._stub.LeaseQuota = real  # type: ignore[method-assign]
        # What billing granted the cancelled request (a request and a slot) comes back all the same.
        await _until_async(lambda: _window_left(h, key_id), 299)
        probe = str(uuid.uuid4())
        rl = await h.billing.LeaseQuota(pb.LeaseQuotaRequest(key_id=key_id, lease_ids=[probe]))
        await h.billing.ReleaseLeases(pb.ReleaseLeasesRequest(lease_ids=[probe]))
        assert rl.concurrent_active == 1  # the probe's own: no slot of a gone request is held
        assert not auth._held
    finally:
        await auth.close()


async def test_a_settlement_sent_again_gives_back_nothing_more(harness: Harness) -> None:
    h = harness
    secret, key_id = await _plan_key(h, account_pb2.PLAN_FREE)
    real = h.auth._stub.LeaseQuota
    lost = [0]

    async def answer_lost_once(request: pb.LeaseQuotaRequest, **kwargs: Any) -> Any:
        resp = await real(request, **kwargs)
        if request.returns and not lost[0]:
            lost[0] += 1  # billing applied the call, but its answer never arrived
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata())
        return resp

    h.auth._stub.LeaseQuota = answer_lost_once  # type: ignore[method-assign]
    # Requests until the gateway holds part of a block unspent (blocks follow the demand, so it varies).
    admitted = 0
    while not any(b.left for q in h.auth._quotas.values() for b in q.blocks):
        assert admitted < 40, "no block was ever left partly unspent"
        admitted += isinstance(await _admit(h.auth, secret), dict)
    await asyncio.sleep(2.0)  # the unspent rest is settled, and settled again
    assert lost[0] == 1
    assert await _window_left(h, key_id) == 60 - admitted


async def test_close_returns_promptly_after_a_slot_was_freed() -> None:
    # Nothing listens there: close() must not wait on billing, nor on its own housekeeping loop (woken
    # by a freed slot just before it is cancelled).
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    for steps in range(4):
        auth = Authenticator(channel, cache_seconds=1.0)
        auth._start()
        await asyncio.sleep(0.01)
        auth._wake_flusher()
        for _ in range(steps):
            await asyncio.sleep(0)
        async with asyncio.timeout(15):
            await auth.close()
    await channel.close()
