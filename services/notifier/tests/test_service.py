"""The notifier against real Postgres, NATS and local HTTPS receivers: endpoints, signed deliveries,
retries, 410, Retry-After, rotation, per-batch webhook_url, replay, refused destinations."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2

from cvmatch.api.billing.v1 import events_pb2 as billing_events
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.api.notifier.v1 import events_pb2 as notifier_events
from cvmatch.api.notifier.v1 import notifier_service_pb2 as pb
from cvmatch.notifier.webhooks import (
    CallableResolver,
    SignatureVerificationError,
    StaticResolver,
    verify,
    verify_x_signature,
)

from .conftest import (
    HOST,
    NotifierFactory,
    Receiver,
    Request,
    create_endpoint,
    deliveries,
    new_account,
    publish,
    wait_until,
)


def _completed(account: int, batch_id: str, url: str = "") -> ingest_events.BatchCompleted:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ingest_events.BatchCompleted(batch_id=batch_id, account_id=account, total_candidates=5,
                                        matched_candidates=4, failed_candidates=1, complete_time=ts, webhook_url=url)


def _error_reason(exc: grpc.aio.AioRpcError) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(exc)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    raise AssertionError("no ErrorInfo")


async def test_endpoint_crud_secret_shown_once(notifiers: NotifierFactory, receiver_factory) -> None:
    n = await notifiers.start()
    account, other = new_account(), new_account()
    receiver: Receiver = await receiver_factory()
    created = await create_endpoint(n.stub, account, receiver.url(), ["batch.completed", "credits.low"])
    assert created.secret.startswith("whsec_")
    eid = created.endpoint.endpoint_id
    assert list(created.endpoint.events) == ["batch.completed", "credits.low"]
    got = await n.stub.GetEndpoint(pb.GetEndpointRequest(account_id=account, endpoint_id=eid))
    assert got.endpoint.url == receiver.url() and got.endpoint.enabled
    listed = await n.stub.ListEndpoints(pb.ListEndpointsRequest(account_id=account))
    assert [e.endpoint_id for e in listed.endpoints] == [eid]
    assert created.secret not in str(got) + str(listed)  # the secret is shown once, at creation
    updated = await n.stub.UpdateEndpoint(pb.UpdateEndpointRequest(
        account_id=account, endpoint_id=eid, events=["*"], update_events=True, description="ops"))
    assert list(updated.endpoint.events) == ["*"] and updated.endpoint.description == "ops"
    with pytest.raises(grpc.aio.AioRpcError) as bad_event:
        await n.stub.UpdateEndpoint(pb.UpdateEndpointRequest(
            account_id=account, endpoint_id=eid, events=["batch.exploded"], update_events=True))
    assert bad_event.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch.exploded" in (bad_event.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await n.stub.GetEndpoint(pb.GetEndpointRequest(account_id=other, endpoint_id=eid))
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    await n.stub.DeleteEndpoint(pb.DeleteEndpointRequest(account_id=account, endpoint_id=eid))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await n.stub.GetEndpoint(pb.GetEndpointRequest(account_id=account, endpoint_id=eid))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_batch_completed_is_delivered_signed_both_ways(notifiers: NotifierFactory, receiver_factory,
                                                              js) -> None:
    n = await notifiers.start()
    account = new_account()
    receiver: Receiver = await receiver_factory()
    created = await create_endpoint(n.stub, account, receiver.url("/hooks?x=1"), ["batch.completed"])
    batch_id = str(uuid.uuid4())
    await publish(js, "ingest.batch.completed", _completed(account, batch_id))
    # Not subscribed: must not arrive.
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=1, threshold=5))
    [request] = await receiver.wait_for(1)
    verify(request.body, request.headers, [created.secret])  # Standard Webhooks
    assert verify_x_signature(request.body, request.headers["x-signature"], created.secret)  # SkillSync recipe
    body = request.json
    assert body["type"] == "batch.completed" and body["id"] == request.headers["webhook-id"]
    assert body["data"] == {"batch_job_id": batch_id, "status": "completed", "total_candidates": 5,
                            "processed_candidates": 5, "failed_candidates": 1}
    assert request.target == "/hooks?x=1" and request.headers["host"] == f"{HOST}:{receiver.port}"

    async def logged() -> bool:
        return [d.status for d in await deliveries(n.stub, account, created.endpoint.endpoint_id)] == ["succeeded"]

    await wait_until(logged, what="succeeded in the log")
    [d] = await deliveries(n.stub, account, created.endpoint.endpoint_id)
    assert d.event_type == "batch.completed" and d.attempts == 1
    assert d.attempt_log[0].status_code == 200 and d.attempt_log[0].latency_ms >= 0
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1


async def test_retries_follow_the_schedule_with_the_same_webhook_id(notifiers: NotifierFactory,
                                                                   receiver_factory, js) -> None:
    n = await notifiers.start(NOTIFIER_RETRY_SCHEDULE="0.3,0.6,0.9")

    async def fail_twice(index: int, request: Request) -> tuple[int, dict[str, str]]:
        return (500 if index < 2 else 204), {}

    receiver: Receiver = await receiver_factory(fail_twice)
    account = new_account()
    created = await create_endpoint(n.stub, account, receiver.url(), ["candidate.matched"])
    await publish(js, "matcher.candidate.matched", matcher_events.CandidateMatched(
        candidate_id=str(uuid.uuid4()), batch_id=str(uuid.uuid4()), account_id=account, overall_score=87.5,
        verdict="strong"))
    requests = await receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for r in requests:
        verify(r.body, r.headers, [created.secret])
        assert r.body == requests[0].body
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert 0.3 <= gaps[0] < 0.3 + 0.6 and 0.6 <= gaps[1] < 0.6 + 0.6, gaps
    assert requests[0].json["data"]["score"] == 87.5

    async def succeeded() -> bool:
        return [d.status for d in await deliveries(n.stub, account, created.endpoint.endpoint_id)] == ["succeeded"]

    await wait_until(succeeded)
    [d] = await deliveries(n.stub, account, created.endpoint.endpoint_id)
    assert [a.status_code for a in d.attempt_log] == [500, 500, 204]


async def test_exhausted_delivery_fails_publishes_and_replays(notifiers: NotifierFactory, receiver_factory,
                                                             js) -> None:
    n = await notifiers.start(NOTIFIER_RETRY_SCHEDULE="0.1,0.1")
    healthy = False

    async def down_until_fixed(index: int, request: Request) -> tuple[int, dict[str, str]]:
        return (200 if healthy else 500), {}

    receiver: Receiver = await receiver_factory(down_until_fixed)
    account = new_account()
    created = await create_endpoint(n.stub, account, receiver.url(), ["credits.low"])
    eid = created.endpoint.endpoint_id
    failed_events: list[notifier_events.DeliveryFailed] = []

    async def on_failed(msg) -> None:
        event = notifier_events.DeliveryFailed.FromString(msg.data)
        if event.account_id == account:
            failed_events.append(event)

    sub = await js.subscribe("notifier.delivery.failed", cb=on_failed)
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=3, threshold=5))
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=2, threshold=5))

    async def both_failed() -> bool:
        return len(await deliveries(n.stub, account, eid, "failed")) == 2

    await wait_until(both_failed, what="two failed deliveries")
    assert len(receiver.requests) == 6  # 1 + 2 retries each
    await wait_until(lambda: _true(len(failed_events) == 2), what="notifier.delivery.failed events")
    assert {e.attempts for e in failed_events} == {3} and {e.event_type for e in failed_events} == {"credits.low"}
    await sub.unsubscribe()

    failed = await deliveries(n.stub, account, eid, "failed")
    healthy = True
    one = await n.stub.ReplayDeliveries(pb.ReplayDeliveriesRequest(
        account_id=account, endpoint_id=eid, delivery_id=failed[0].delivery_id))
    assert one.replayed == 1
    await receiver.wait_for(7)
    assert receiver.requests[6].headers["webhook-id"] == failed[0].event_id  # the same message, replayed

    async def one_left() -> bool:
        return len(await deliveries(n.stub, account, eid, "failed")) == 1

    await wait_until(one_left)
    with pytest.raises(grpc.aio.AioRpcError) as not_failed:
        await n.stub.ReplayDeliveries(pb.ReplayDeliveriesRequest(
            account_id=account, endpoint_id=eid, delivery_id=failed[0].delivery_id))
    assert not_failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    rest = await n.stub.ReplayDeliveries(pb.ReplayDeliveriesRequest(account_id=account, endpoint_id=eid))
    assert rest.replayed == 1

    async def all_ok() -> bool:
        return {d.status for d in await deliveries(n.stub, account, eid)} == {"succeeded"}

    await wait_until(all_ok)
    assert len(receiver.requests) == 8


async def _true(value: bool) -> bool:
    return value


async def test_410_disables_the_endpoint(notifiers: NotifierFactory, receiver_factory, js) -> None:
    n = await notifiers.start()
    gone = True

    async def respond(index: int, request: Request) -> tuple[int, dict[str, str]]:
        return (410 if gone else 200), {}

    receiver: Receiver = await receiver_factory(respond)
    account = new_account()
    created = await create_endpoint(n.stub, account, receiver.url(), ["credits.low"])
    eid = created.endpoint.endpoint_id
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=1, threshold=5))
    await receiver.wait_for(1)

    async def disabled() -> bool:
        got = await n.stub.GetEndpoint(pb.GetEndpointRequest(account_id=account, endpoint_id=eid))
        return not got.endpoint.enabled

    await wait_until(disabled, what="endpoint disabled")
    got = await n.stub.GetEndpoint(pb.GetEndpointRequest(account_id=account, endpoint_id=eid))
    assert "410" in got.endpoint.disabled_reason
    assert [d.status for d in await deliveries(n.stub, account, eid)] == ["failed"]  # no retry after 410
    # A disabled endpoint gets no new events.
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=0, threshold=5))
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1
    with pytest.raises(grpc.aio.AioRpcError) as disabled_ping:
        await n.stub.SendTestEvent(pb.SendTestEventRequest(account_id=account, endpoint_id=eid))
    assert _error_reason(disabled_ping.value) == "WEBHOOK_DISABLED"
    gone = False
    await n.stub.UpdateEndpoint(pb.UpdateEndpointRequest(account_id=account, endpoint_id=eid, enabled=True))
    await n.stub.ReplayDeliveries(pb.ReplayDeliveriesRequest(account_id=account, endpoint_id=eid, delivery_id="all"))
    await receiver.wait_for(2)


async def test_retry_after_is_honoured_up_to_the_cap(notifiers: NotifierFactory, receiver_factory, js) -> None:
    n = await notifiers.start(NOTIFIER_RETRY_SCHEDULE="0.1,0.1", NOTIFIER_RETRY_AFTER_CAP_SECONDS="1.0")

    async def busy(index: int, request: Request) -> tuple[int, dict[str, str]]:
        answers = [(503, {"Retry-After": "3600"}), (429, {"Retry-After": "0"})]
        return answers[index] if index < len(answers) else (200, {})

    receiver: Receiver = await receiver_factory(busy)
    account = new_account()
    await create_endpoint(n.stub, account, receiver.url(), ["credits.low"])
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=1, threshold=5))
    requests = await receiver.wait_for(3)
    first_gap, second_gap = requests[1].at - requests[0].at, requests[2].at - requests[1].at
    assert 1.0 <= first_gap < 1.6, first_gap  # Retry-After 3600 capped at 1 s
    assert 0.1 <= second_gap < 0.6, second_gap  # never shorter than the schedule


async def test_rotated_secret_overlaps_with_the_old_one(notifiers: NotifierFactory, receiver_factory) -> None:
    n = await notifiers.start()
    receiver: Receiver = await receiver_factory()
    account = new_account()
    created = await create_endpoint(n.stub, account, receiver.url(), ["*"])
    eid = created.endpoint.endpoint_id
    rotated = await n.stub.RotateSecret(pb.RotateSecretRequest(account_id=account, endpoint_id=eid,
                                                               overlap_seconds=60))
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    ping = await n.stub.SendTestEvent(pb.SendTestEventRequest(account_id=account, endpoint_id=eid))
    assert ping.delivery.event_type == "webhook.test"
    [request] = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(request.body, request.headers, [created.secret])  # receivers not yet switched
    verify(request.body, request.headers, [rotated.secret])  # receivers already switched
    assert verify_x_signature(request.body, request.headers["x-signature"], rotated.secret)
    # With no overlap the old secret stops signing at once.
    third = await n.stub.RotateSecret(pb.RotateSecretRequest(account_id=account, endpoint_id=eid,
                                                             overlap_seconds=0))
    await n.stub.SendTestEvent(pb.SendTestEventRequest(account_id=account, endpoint_id=eid))
    second = (await receiver.wait_for(2))[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    verify(second.body, second.headers, [third.secret])
    with pytest.raises(SignatureVerificationError):
        verify(second.body, second.headers, [rotated.secret, created.secret])


async def test_per_batch_webhook_url_is_a_one_off_endpoint(notifiers: NotifierFactory, receiver_factory,
                                                          js) -> None:
    n = await notifiers.start()
    batch_receiver: Receiver = await receiver_factory()
    account_receiver: Receiver = await receiver_factory()
    account = new_account()
    await create_endpoint(n.stub, account, account_receiver.url(), ["batch.completed"])
    batch_id, other_batch = str(uuid.uuid4()), str(uuid.uuid4())
    await publish(js, "ingest.batch.created", ingest_events.BatchCreated(
        batch_id=batch_id, account_id=account, total_candidates=5, webhook_url=batch_receiver.url("/cb")))
    await asyncio.sleep(0.3)
    await publish(js, "matcher.candidate.matched", matcher_events.CandidateMatched(
        candidate_id=str(uuid.uuid4()), batch_id=batch_id, account_id=account, overall_score=50, verdict="fair"))
    await publish(js, "ingest.batch.completed", _completed(account, other_batch))  # another batch: account only
    await publish(js, "ingest.batch.completed", _completed(account, batch_id, batch_receiver.url("/cb")))
    await account_receiver.wait_for(2)
    [request] = await batch_receiver.wait_for(1)
    assert request.target == "/cb" and request.json["data"]["batch_job_id"] == batch_id
    assert request.headers["webhook-signature"].startswith("v1,")
    await asyncio.sleep(0.3)
    assert len(batch_receiver.requests) == 1
    listed = await n.stub.ListEndpoints(pb.ListEndpointsRequest(account_id=account))
    assert len(listed.endpoints) == 1  # the batch's one-off endpoint is not an account endpoint


async def test_a_redelivered_event_is_delivered_once(notifiers: NotifierFactory, receiver_factory, js) -> None:
    n = await notifiers.start()
    receiver: Receiver = await receiver_factory()
    account = new_account()
    await create_endpoint(n.stub, account, receiver.url(), ["credits.low"])
    event_id = str(uuid.uuid4())
    message = billing_events.CreditsLow(account_id=account, available=1, threshold=5)
    # Same event id, different Nats-Msg-Id: JetStream keeps both, the notifier must not.
    await publish(js, "billing.credits.low", message, event_id=event_id, msg_id=str(uuid.uuid4()))
    await publish(js, "billing.credits.low", message, event_id=event_id, msg_id=str(uuid.uuid4()))
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1


REFUSED_ANYWHERE = [
    ("http://hooks.test/x", "INSECURE_WEBHOOK_URL"),
    ("https://0x7f000001/x", None), ("https://2130706433/x", None), ("https://0177.0.0.1/x", None),
    ("https://127.1/x", None), ("https://127.0.0.1/x", None), ("https://[::1]/x", None),
    ("https://0.0.0.0/x", "PRIVATE_WEBHOOK_URL"), ("https://0/x", "PRIVATE_WEBHOOK_URL"),
    ("https://[::ffff:127.0.0.1]/x", "PRIVATE_WEBHOOK_URL"), ("https://[::ffff:7f00:1]/x", "PRIVATE_WEBHOOK_URL"),
    ("https://169.254.169.254/latest", "PRIVATE_WEBHOOK_URL"), ("https://100.64.0.1/x", "PRIVATE_WEBHOOK_URL"),
    ("https://10.0.0.1/x", "PRIVATE_WEBHOOK_URL"), ("https://192.168.1.1/x", "PRIVATE_WEBHOOK_URL"),
    ("https://[fd00::1]/x", "PRIVATE_WEBHOOK_URL"), ("https://[64:ff9b::a00:1]/x", "PRIVATE_WEBHOOK_URL"),
    ("https://[2002:a00:1::1]/x", "PRIVATE_WEBHOOK_URL"), ("https://224.0.0.1/x", "PRIVATE_WEBHOOK_URL"),
    ("https://intranet.test/x", "PRIVATE_WEBHOOK_URL"),
]


async def test_refused_destinations_at_registration(notifiers: NotifierFactory) -> None:
    # The production policy: no loopback, no http.
    n = await notifiers.start(NOTIFIER_ALLOW_LOOPBACK="false",
                              resolver=StaticResolver({"intranet.test": ["10.1.2.3"], HOST: ["127.0.0.1"]}))
    account = new_account()
    for url, reason in REFUSED_ANYWHERE:
        for call in (n.stub.ValidateUrl(pb.ValidateUrlRequest(url=url)),
                     n.stub.CreateEndpoint(pb.CreateEndpointRequest(account_id=account, url=url, events=["*"]))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
            assert _error_reason(refused.value) == (reason or "PRIVATE_WEBHOOK_URL"), url
    listed = await n.stub.ListEndpoints(pb.ListEndpointsRequest(account_id=account))
    assert not listed.endpoints


async def test_dns_rebinding_is_refused_at_send_time(notifiers: NotifierFactory, receiver_factory) -> None:
    receiver: Receiver = await receiver_factory()

    def answer(host: str, call: int) -> list[str]:
        # Public when registered, private (the receiver is really on loopback) afterwards.
        return ["93.184.216.34"] if call == 1 else ["10.0.0.7"]

    n = await notifiers.start(NOTIFIER_ALLOW_LOOPBACK="false", resolver=CallableResolver(answer))
    account = new_account()
    created = await create_endpoint(n.stub, account, receiver.url(host="rebind.test"), ["*"])
    eid = created.endpoint.endpoint_id
    await n.stub.SendTestEvent(pb.SendTestEventRequest(account_id=account, endpoint_id=eid))

    async def attempted() -> bool:
        logged = await deliveries(n.stub, account, eid)
        return bool(logged and logged[0].attempt_log)

    await wait_until(attempted)
    [d] = await deliveries(n.stub, account, eid)
    assert d.attempt_log[0].status_code == 0 and "non-public" in d.attempt_log[0].error
    assert receiver.requests == []


async def test_finished_deliveries_are_purged_after_retention(notifiers: NotifierFactory, receiver_factory) -> None:
    import datetime as dt

    from cvmatch.notifier.domain import SecretBox
    from cvmatch.notifier.repository import Repository
    from cvmatch.platform.db import create_pool

    n = await notifiers.start()
    receiver: Receiver = await receiver_factory()
    account = new_account()
    created = await create_endpoint(n.stub, account, receiver.url(), ["*"])
    eid = created.endpoint.endpoint_id
    await n.stub.SendTestEvent(pb.SendTestEventRequest(account_id=account, endpoint_id=eid))

    async def succeeded() -> bool:
        return [d.status for d in await deliveries(n.stub, account, eid)] == ["succeeded"]

    await wait_until(succeeded)
    pool = await create_pool(n.settings.common)
    try:
        repo = Repository(pool, SecretBox(n.settings.secrets_key))
        assert await repo.purge_finished(dt.timedelta(days=1)) == 0  # still within retention
        assert await repo.purge_finished(dt.timedelta(0)) == 1
    finally:
        await pool.close()
    assert await deliveries(n.stub, account, eid) == []


async def test_submission_webhooks_are_signed_with_the_account_secret(notifiers: NotifierFactory,
                                                                      receiver_factory, js) -> None:
    n = await notifiers.start()
    receiver: Receiver = await receiver_factory()
    account = new_account()
    # The account reads its submission secret by rotating the well-known `submissions` webhook.
    first = await n.stub.RotateSecret(pb.RotateSecretRequest(account_id=account, endpoint_id="submissions",
                                                             overlap_seconds=0))
    assert first.secret.startswith("whsec_")
    batch_id = str(uuid.uuid4())
    await publish(js, "ingest.batch.completed", _completed(account, batch_id, receiver.url("/cb")))
    (request,) = await receiver.wait_for(1)
    verify(request.body, request.headers, [first.secret])
    assert verify_x_signature(request.body, request.headers["x-signature"], first.secret)

    # Rotating with an overlap: the next batch's delivery carries both signatures, X-Signature the new one.
    second = await n.stub.RotateSecret(pb.RotateSecretRequest(account_id=account, endpoint_id="submissions",
                                                              overlap_seconds=60))
    assert second.secret not in ("", first.secret)
    await publish(js, "ingest.batch.completed", _completed(account, str(uuid.uuid4()), receiver.url("/cb")))
    requests = await receiver.wait_for(2)
    verify(requests[1].body, requests[1].headers, [first.secret])
    verify(requests[1].body, requests[1].headers, [second.secret])
    assert verify_x_signature(requests[1].body, requests[1].headers["x-signature"], second.secret)
    # Another account's submission secret is its own.
    other = await n.stub.RotateSecret(pb.RotateSecretRequest(account_id=new_account(), endpoint_id="submissions"))
    with pytest.raises(SignatureVerificationError):
        verify(requests[1].body, requests[1].headers, [other.secret])


async def test_an_undecryptable_secret_fails_only_its_endpoint(notifiers: NotifierFactory, receiver_factory,
                                                               js) -> None:
    import asyncpg

    from cvmatch.notifier.domain import SecretBox

    n = await notifiers.start()
    broken_receiver: Receiver = await receiver_factory()
    good_receiver: Receiver = await receiver_factory()
    account = new_account()
    broken = await create_endpoint(n.stub, account, broken_receiver.url(), ["credits.low"])
    good = await create_endpoint(n.stub, account, good_receiver.url(), ["credits.low"])
    # The secret sealed under another key, as after an operator changed NOTIFIER_SECRETS_KEY.
    bid = uuid.UUID(broken.endpoint.endpoint_id)
    conn = await asyncpg.connect(notifiers.database_url)
    try:
        await conn.execute(
            f"UPDATE {n.settings.common.db_schema}.endpoint_secrets SET ciphertext = $2 WHERE endpoint_id = $1",
            bid, SecretBox(bytes(32)).seal(bid, "whsec_elsewhere"))
    finally:
        await conn.close()
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=1, threshold=5))
    (request,) = await good_receiver.wait_for(1)
    verify(request.body, request.headers, [good.secret])

    async def failed() -> bool:
        return bool(await deliveries(n.stub, account, broken.endpoint.endpoint_id, "failed"))

    await wait_until(failed, what="the broken endpoint's delivery failed")
    (delivery,) = await deliveries(n.stub, account, broken.endpoint.endpoint_id)
    assert "cannot be decrypted" in delivery.attempt_log[0].error
    got = await n.stub.GetEndpoint(pb.GetEndpointRequest(account_id=account,
                                                         endpoint_id=broken.endpoint.endpoint_id))
    assert not got.endpoint.enabled and "NOTIFIER_SECRETS_KEY" in got.endpoint.disabled_reason
    assert not broken_receiver.requests
    # Later events still reach the healthy endpoint; the fix is a rotation and enabling it again.
    await publish(js, "billing.credits.low", billing_events.CreditsLow(account_id=account, available=0, threshold=5))
    await good_receiver.wait_for(2)
    rotated = await n.stub.RotateSecret(pb.RotateSecretRequest(account_id=account,
                                                               endpoint_id=broken.endpoint.endpoint_id,
                                                               overlap_seconds=0))
    await n.stub.UpdateEndpoint(pb.UpdateEndpointRequest(account_id=account,
                                                         endpoint_id=broken.endpoint.endpoint_id, enabled=True))
    replayed = await n.stub.ReplayDeliveries(pb.ReplayDeliveriesRequest(
        account_id=account, endpoint_id=broken.endpoint.endpoint_id, delivery_id="all"))
    assert replayed.replayed == 1
    (arrived,) = await broken_receiver.wait_for(1)  # events while it was disabled were not queued for it
    verify(arrived.body, arrived.headers, [rotated.secret])
