"""The whole service in-process (gRPC + consumers + outbox relay on real Postgres and NATS), and the
command line in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.msg import Msg

from cvmatch.api.billing.v1 import account_pb2, events_pb2
from cvmatch.api.billing.v1 import billing_service_pb2 as pb
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as pb_grpc
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.billing.app import MIGRATIONS, build
from cvmatch.platform.db import migrate
from cvmatch.platform.server import serve
from cvmatch.testing.servers import free_port

from .conftest import make_settings


@pytest.fixture
async def stub(database_url: str, nats_url: str) -> AsyncIterator[pb_grpc.BillingServiceStub]:
    """A running billing service and a client of it."""
    port = free_port()
    settings = make_settings(database_url, nats_url, BILLING_GRPC_PORT=str(port))
    await migrate(settings.common, MIGRATIONS)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings.common, build(settings), ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 30)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.BillingServiceStub(channel)
    finally:
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


def _meta(err: grpc.aio.AioRpcError, key: str) -> str | None:
    for k, v in err.trailing_metadata() or ():
        if k == key:
            return str(v)
    return None


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_rpcs_end_to_end(stub: pb_grpc.BillingServiceStub) -> None:
    acct = (await stub.CreateAccount(pb.CreateAccountRequest(name="acme", plan=account_pb2.PLAN_FREE,
                                                             initial_credits=3))).account
    assert acct.limits.requests_per_minute == 60 and acct.limits.max_cvs_per_job == 10
    created = await stub.CreateApiKey(pb.CreateApiKeyRequest(account_id=acct.account_id, name="ci",
                                                             scopes=["match:execute"]))
    assert created.secret.startswith("cvm_live_") and created.api_key.prefix.startswith("cvm_live_")
    auth = await stub.Authenticate(pb.AuthenticateRequest(api_key=created.secret, required_scope="match:read"))
    assert auth.account.account_id == acct.account_id and "match:read" in auth.scopes

    err = await _error(stub.Authenticate(pb.AuthenticateRequest(api_key=created.secret,
                                                                required_scope="cvdeepmatch")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "MISSING_PERMISSION" in (_meta(
        err, "x-cvmatch-error-body") or "")
    err = await _error(stub.Authenticate(pb.AuthenticateRequest(api_key="cvm_live_nope")))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and _meta(err, "x-cvmatch-http-status") == "401"
    err = await _error(stub.Authenticate(pb.AuthenticateRequest()))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    rl = await stub.LeaseQuota(pb.LeaseQuotaRequest(key_id=auth.key_id, requests=1))
    assert rl.granted == 1 and rl.grant_id > 0 and rl.limit == 60 and rl.remaining == 59 and rl.reset_unix > 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LeaseQuota(pb.LeaseQuotaRequest(key_id=auth.key_id, requests=5000))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    res = await stub.ReserveCredits(pb.ReserveCreditsRequest(account_id=acct.account_id, batch_id="b1", credits=2))
    assert (res.available, res.reserved) == (1, 2)
    err = await _error(stub.ReserveCredits(pb.ReserveCreditsRequest(account_id=acct.account_id, batch_id="b2",
                                                                    credits=5)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and _meta(err, "x-cvmatch-http-status") == "402"
    rel = await stub.ReleaseCredits(pb.ReleaseCreditsRequest(account_id=acct.account_id, batch_id="b1"))
    assert rel.released == 2
    grant = await stub.GrantCredits(pb.GrantCreditsRequest(account_id=acct.account_id, credits=500,
                                                           price_cents=400, grant_id="inv-1"))
    assert grant.available == 503
    bal = await stub.GetBalance(pb.GetBalanceRequest(account_id=acct.account_id))
    assert (bal.available, bal.reserved, bal.captured, bal.granted) == (503, 0, 0, 503)
    entries = (await stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(account_id=acct.account_id))).entries
    assert [e.kind for e in entries] == ["grant", "release", "reserve", "grant"]
    assert "price_cents=400" in entries[0].note

    plan = await stub.SetPlan(pb.SetPlanRequest(account_id=acct.account_id, plan=account_pb2.PLAN_CUSTOM,
                                                custom_limits=account_pb2.PlanLimits(
                                                    requests_per_minute=7, requests_per_day=70, burst=7,
                                                    concurrent_requests=1, max_cvs_per_job=3)))
    assert plan.account.limits.requests_per_minute == 7
    err = await _error(stub.SetPlan(pb.SetPlanRequest(account_id=acct.account_id, plan=account_pb2.PLAN_CUSTOM)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = await _error(stub.GetAccount(pb.GetAccountRequest(account_id=99999)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _error(stub.CreateApiKey(pb.CreateApiKeyRequest(account_id=acct.account_id, scopes=["root"])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    keys = (await stub.ListApiKeys(pb.ListApiKeysRequest(account_id=acct.account_id))).api_keys
    assert [k.key_id for k in keys] == [auth.key_id]
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(account_id=acct.account_id, key_id=auth.key_id))
    err = await _error(stub.Authenticate(pb.AuthenticateRequest(api_key=created.secret)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_events_capture_and_release_exactly_once(stub: pb_grpc.BillingServiceStub, nats_url: str) -> None:
    acct = (await stub.CreateAccount(pb.CreateAccountRequest(name="events", initial_credits=10))).account
    batch = f"batch-{uuid.uuid4()}"
    await stub.ReserveCredits(pb.ReserveCreditsRequest(account_id=acct.account_id, batch_id=batch, credits=4))
    nc = await nats.connect(nats_url)
    try:
        settled: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_settled(msg: Msg) -> None:
            await settled.put(msg.data)

        await nc.subscribe("billing.batch.settled", cb=on_settled)
        js = nc.jetstream()

        async def publish(subject: str, message: object, event_id: str, msg_id: str | None = None) -> None:
            eid = event_id
            await js.publish(subject, message.SerializeToString(),  # type: ignore[attr-defined]
                             headers={"Nats-Msg-Id": msg_id or eid, "ce-id": eid,
                                      "ce-type": message.DESCRIPTOR.full_name})  # type: ignore[attr-defined]

        def matched(cand: str) -> matcher_events.CandidateMatched:
            return matcher_events.CandidateMatched(candidate_id=cand, batch_id=batch, account_id=acct.account_id,
                                                   overall_score=80.0, verdict="STRONG_MATCH")

        await publish("matcher.candidate.matched", matched("c1"), "e1-" + batch)
        # The same event redelivered under another stream message id, and a second event for the same
        # candidate (a matcher retry): neither charges again.
        await publish("matcher.candidate.matched", matched("c1"), "e1-" + batch, msg_id="dup-" + batch)
        await publish("matcher.candidate.matched", matched("c1"), "e1b-" + batch)
        await publish("matcher.candidate.matched", matched("c2"), "e2-" + batch)

        async def captured_two() -> bool:
            bal = await stub.GetBalance(pb.GetBalanceRequest(account_id=acct.account_id))
            return bal.captured == 2

        await _eventually(captured_two)
        done = ingest_events.BatchCompleted(batch_id=batch, account_id=acct.account_id, total_candidates=4,
                                            matched_candidates=2, failed_candidates=2)
        await publish("ingest.batch.completed", done, "done-" + batch)
        await publish("ingest.batch.completed", done, "done2-" + batch)
        data = await asyncio.wait_for(settled.get(), 15)
        ev = events_pb2.BatchSettled.FromString(data)
        assert (ev.batch_id, ev.reserved, ev.captured, ev.released) == (batch, 4, 2, 2)
        await asyncio.sleep(0.5)
        assert settled.empty()
        bal = await stub.GetBalance(pb.GetBalanceRequest(account_id=acct.account_id))
        assert (bal.available, bal.reserved, bal.captured) == (8, 0, 2)
    finally:
        await nc.close()


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cvmatch.billing", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_command_line_migrate_admin_bootstrap_and_serve(database_url: str, nats_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url, "CVMATCH_ENV": "local",
           "BILLING_GRPC_PORT": str(port)}
    env.pop("BILLING_KEY_PEPPER", None)
    assert _run({**env, "CVMATCH_ENV": "production"}, "migrate").returncode == 2  # no pepper: fail fast
    assert _run(env, "migrate").returncode == 0

    out = _run(env, "admin", "create-account", "--name", "N", "--plan", "free", "--credits", "100")
    assert out.returncode == 0, out.stderr
    account_id = json.loads(out.stdout)["account"]["account_id"]
    out = _run(env, "admin", "create-key", "--account", str(account_id), "--scopes", "admin,match:execute")
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)
    assert key["secret"].startswith("cvm_live_") and key["api_key"]["scopes"] == ["admin", "match:execute"]
    out = _run(env, "admin", "grant", "--account", str(account_id), "--pack", "500")
    assert out.returncode == 0 and json.loads(out.stdout)["balance"]["available"] == 600
    assert json.loads(out.stdout)["price_cents"] == 400
    out = _run(env, "admin", "set-plan", "--account", str(account_id), "--plan", "pro")
    assert json.loads(out.stdout)["account"]["limits"]["requests_per_minute"] == 300
    out = _run(env, "admin", "balance", "--account", str(account_id))
    assert json.loads(out.stdout)["consistent"] is True
    assert _run(env, "admin", "grant", "--account", str(account_id), "--pack", "7").returncode == 2

    first = _run(env, "bootstrap-local")
    second = _run(env, "bootstrap-local")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    k1 = first.stdout.strip().split("=", 1)[1]
    k2 = second.stdout.strip().split("=", 1)[1]
    assert first.stdout.startswith("CVMATCH_API_KEY=cvm_live_") and k1 != k2

    proc = subprocess.Popen([sys.executable, "-m", "cvmatch.billing"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        status = -1
        for _ in range(150):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                try:
                    status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status
                except grpc.RpcError:
                    status = -1
                if status == health_pb2.HealthCheckResponse.SERVING:
                    auth = pb_grpc.BillingServiceStub(ch).Authenticate(pb.AuthenticateRequest(api_key=k1),
                                                                      timeout=5)
                    assert "admin" in auth.scopes and auth.account.name == "local"
                    assert auth.account.plan == account_pb2.PLAN_ENTERPRISE
                    break
            time.sleep(0.2)
        assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
