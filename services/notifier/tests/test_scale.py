"""Several notifiers share the delivery queue without sending an attempt twice; a slow receiver does not
hold up the others."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from cvmatch.api.billing.v1 import events_pb2 as billing_events

from .conftest import NotifierFactory, Receiver, Request, create_endpoint, new_account, publish


async def test_two_notifiers_deliver_each_delivery_once(notifiers: NotifierFactory, receiver_factory, js) -> None:
    async def slowish(index: int, request: Request) -> tuple[int, dict[str, str]]:
        await asyncio.sleep(0.02)  # long enough that both processes' workers overlap
        return 200, {}

    receiver: Receiver = await receiver_factory(slowish)
    first = await notifiers.start(NOTIFIER_WORKERS="4")
    second = await notifiers.start(NOTIFIER_WORKERS="4")
    account = new_account()
    endpoints = 4
    for i in range(endpoints):
        await create_endpoint(first.stub, account, receiver.url(f"/e{i}"), ["credits.low"])
    events = 15
    for i in range(events):
        await publish(js, "billing.credits.low",
                      billing_events.CreditsLow(account_id=account, available=i, threshold=100))
    await receiver.wait_for(endpoints * events, timeout=30)
    await asyncio.sleep(0.5)  # a duplicate would show up now
    seen = Counter((r.target, r.headers["webhook-id"]) for r in receiver.requests)
    assert len(seen) == endpoints * events
    assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1]
    # Both processes took part (the queue is shared, not owned by one of them).
    assert first.dispatcher.attempts_recorded > 0 and second.dispatcher.attempts_recorded > 0
    assert first.dispatcher.attempts_recorded + second.dispatcher.attempts_recorded == endpoints * events


async def test_a_slow_receiver_does_not_delay_the_others(notifiers: NotifierFactory, receiver_factory, js) -> None:
    async def slow(index: int, request: Request) -> tuple[int, dict[str, str]]:
        await asyncio.sleep(1.5)
        return 200, {}

    slow_receiver: Receiver = await receiver_factory(slow)
    fast_receiver: Receiver = await receiver_factory()
    n = await notifiers.start(NOTIFIER_WORKERS="4", NOTIFIER_ENDPOINT_CONCURRENCY="2")
    account = new_account()
    await create_endpoint(n.stub, account, slow_receiver.url(), ["credits.low"])
    await create_endpoint(n.stub, account, fast_receiver.url(), ["credits.low"])
    started = time.monotonic()
    for i in range(6):
        await publish(js, "billing.credits.low",
                      billing_events.CreditsLow(account_id=account, available=i, threshold=9))
    await fast_receiver.wait_for(6, timeout=10)
    fast_done = time.monotonic() - started
    # Six slow deliveries at two at a time take >= 4.5 s; the fast endpoint must not wait for them.
    assert fast_done < 1.5, fast_done
    assert len(slow_receiver.requests) <= 2  # the per-endpoint limit holds


async def test_a_backlogged_slow_endpoint_does_not_starve_the_others(notifiers: NotifierFactory,
                                                                     receiver_factory, js) -> None:
    # A slow receiver at its concurrency cap with far more overdue deliveries than one claim reads
    # (4 x the free workers): the claim must look past them, or every other endpoint waits.
    async def slow(index: int, request: Request) -> tuple[int, dict[str, str]]:
        await asyncio.sleep(5)
        return 200, {}

    slow_receiver: Receiver = await receiver_factory(slow)
    fast_receiver: Receiver = await receiver_factory()
    n = await notifiers.start(NOTIFIER_WORKERS="4", NOTIFIER_ENDPOINT_CONCURRENCY="2",
                              NOTIFIER_TIMEOUT_SECONDS="10", NOTIFIER_LEASE_SECONDS="20")
    slow_account, fast_account = new_account(), new_account()
    await create_endpoint(n.stub, slow_account, slow_receiver.url(), ["credits.low"])
    await create_endpoint(n.stub, fast_account, fast_receiver.url(), ["credits.low"])
    await asyncio.gather(*(publish(js, "billing.credits.low",
                                   billing_events.CreditsLow(account_id=slow_account, available=i, threshold=9))
                           for i in range(100)))
    await slow_receiver.wait_for(2, timeout=10)  # at its cap now, 98 overdue behind it
    await asyncio.sleep(0.3)
    started = time.monotonic()
    for i in range(5):
        await publish(js, "billing.credits.low",
                      billing_events.CreditsLow(account_id=fast_account, available=i, threshold=9))
    await fast_receiver.wait_for(5, timeout=4)
    assert time.monotonic() - started < 4
    assert len(slow_receiver.requests) == 2  # the cap held throughout
