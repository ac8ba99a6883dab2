"""The credit ledger against the real database: idempotency, concurrency, and properties (hypothesis)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvmatch.api.billing.v1 import events_pb2
from cvmatch.billing.repository import Repository
from cvmatch.platform.errors import DomainError

from .conftest import LOW_THRESHOLD, new_account


async def test_200_concurrent_reservations_against_100_credits(repo: Repository) -> None:
    account_id = await new_account(repo, credits=100)

    async def reserve(i: int) -> bool:
        try:
            await repo.reserve(account_id, f"batch-{i}", 1)
            return True
        except DomainError as exc:
            assert exc.reason == "INSUFFICIENT_CREDITS" and exc.http_status == 402
            return False

    results = await asyncio.gather(*(reserve(i) for i in range(200)))
    assert sum(results) == 100
    bal = await repo.balance(account_id)
    assert bal.available == 0 and bal.held == 100
    assert bal == await repo.recompute_balance(account_id)


async def test_reserve_is_idempotent_per_batch_and_writes_nothing_when_short(
        repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo, credits=10)
    results = await asyncio.gather(*(repo.reserve(account_id, "b", 4) for _ in range(20)))
    assert {r[1].reserved for r in results} == {4}
    assert (await repo.balance(account_id)).available == 6
    with pytest.raises(DomainError) as e:
        await repo.reserve(account_id, "b", 5)
    assert e.value.http_status == 422
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM ledger_entries")
        with pytest.raises(DomainError) as e:
            await repo.reserve(account_id, "too-big", 7)
        assert e.value.reason == "INSUFFICIENT_CREDITS"
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == before
        assert await conn.fetchval("SELECT count(*) FROM batches WHERE batch_id = 'too-big'") == 0


async def test_capture_and_release_lifecycle(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo, credits=10)
    await repo.reserve(account_id, "b", 5)
    assert await repo.capture(account_id, "b", "c1")
    assert not await repo.capture(account_id, "b", "c1")  # redelivery
    assert await repo.capture(account_id, "b", "c2")
    settled = await repo.release(account_id, "b")
    assert (settled.reserved, settled.captured, settled.released, settled.settled) == (5, 2, 3, True)
    assert await repo.release(account_id, "b") == settled  # replay
    bal = await repo.balance(account_id)
    assert (bal.available, bal.held, bal.captured, bal.granted) == (8, 0, 2, 10)
    assert bal == await repo.recompute_balance(account_id)
    async with pool.acquire() as conn:
        payloads = await conn.fetch("SELECT payload FROM outbox WHERE subject = 'billing.batch.settled'")
    assert len(payloads) == 1
    ev = events_pb2.BatchSettled.FromString(bytes(payloads[0]["payload"]))
    assert (ev.reserved, ev.captured, ev.released, ev.batch_id) == (5, 2, 3, "b")


async def test_end_of_batch_keeps_credits_for_captures_in_flight(repo: Repository, pool: asyncpg.Pool) -> None:
    # ingest reports 3 results while only one capture has arrived (the other two matched events are still
    # on the matcher's stream): 2 credits are released, 2 stay held, and the batch settles with the last.
    account_id = await new_account(repo, credits=10)
    await repo.reserve(account_id, "b", 5)
    assert await repo.capture(account_id, "b", "c1")
    closed = await repo.release(account_id, "b", matched=3)
    assert (closed.reserved, closed.captured, closed.released, closed.closed, closed.settled) == (5, 1, 2, True, False)
    assert await repo.release(account_id, "b", matched=3) == closed  # redelivered end
    assert await repo.release(account_id, "b") == closed  # a batch closes once
    assert (await repo.balance(account_id)).held == 2
    assert await repo.capture(account_id, "b", "c2")
    assert not await repo.capture(account_id, "b", "c2")
    assert await repo.capture(account_id, "b", "c3")
    b = await repo.batch(account_id, "b")
    assert b is not None and (b.reserved, b.captured, b.released, b.settled) == (5, 3, 2, True)
    bal = await repo.balance(account_id)
    assert (bal.available, bal.held, bal.captured) == (7, 0, 3)
    assert bal == await repo.recompute_balance(account_id)
    async with pool.acquire() as conn:
        payloads = await conn.fetch("SELECT payload FROM outbox WHERE subject = 'billing.batch.settled'")
    assert [(e.reserved, e.captured, e.released) for e in
            (events_pb2.BatchSettled.FromString(bytes(p["payload"])) for p in payloads)] == [(5, 3, 2)]


async def test_result_after_release_is_charged_exactly_once(repo: Repository, pool: asyncpg.Pool) -> None:
    # The batch failed (or its end was seen first) and released everything; a result then arrives. The
    # CV produced a result, so it is charged once, from the available balance, with its own reservation.
    account_id = await new_account(repo, credits=3)
    await repo.reserve(account_id, "b", 2)
    assert (await repo.release(account_id, "b")).released == 2
    results = await asyncio.gather(*(repo.capture(account_id, "b", "late") for _ in range(5)))
    assert sum(results) == 1
    b = await repo.batch(account_id, "b")
    assert b is not None and (b.reserved, b.captured, b.released, b.settled) == (3, 1, 2, True)
    bal = await repo.balance(account_id)
    assert (bal.available, bal.held, bal.captured) == (2, 0, 1)
    assert bal == await repo.recompute_balance(account_id)
    async with pool.acquire() as conn:
        rows = await conn.fetch("""SELECT kind, amount FROM ledger_entries
                                   WHERE account_id = $1 AND candidate_id = 'late' ORDER BY id""", account_id)
    assert [(r["kind"], r["amount"]) for r in rows] == [("reserve", 1), ("capture", 1)]
    # With nothing available the late result is not charged: the balance never goes below zero.
    await repo.reserve(account_id, "b2", 2)
    await repo.release(account_id, "b2")
    await repo.reserve(account_id, "b3", 2)
    assert not await repo.capture(account_id, "b2", "late")
    assert (await repo.balance(account_id)).available == 0


async def test_full_capture_settles_the_batch(repo: Repository) -> None:
    account_id = await new_account(repo, credits=2)
    await repo.reserve(account_id, "b", 2)
    assert await repo.capture(account_id, "b", "c1") and await repo.capture(account_id, "b", "c2")
    assert not await repo.capture(account_id, "b", "c3")  # never more than reserved
    assert (await repo.release(account_id, "b")).released == 0
    assert (await repo.balance(account_id)).available == 0


async def test_grant_is_idempotent_and_records_price(repo: Repository) -> None:
    account_id = await new_account(repo)
    await repo.grant(account_id, 500, 400, "pack", "invoice-1")
    await repo.grant(account_id, 500, 400, "pack", "invoice-1")
    assert (await repo.balance(account_id)).available == 500
    with pytest.raises(DomainError):
        await repo.grant(account_id, 100, 100, "pack", "invoice-1")
    entries = await repo.list_entries(account_id)
    assert [(e.kind.value, e.amount, e.price_cents, e.grant_id) for e in entries] == [
        ("grant", 500, 400, "invoice-1")]


async def test_credits_low_is_published_once_when_crossing(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo, credits=LOW_THRESHOLD + 3)
    await repo.reserve(account_id, "a", 2)   # 6 left: still above
    await repo.reserve(account_id, "b", 2)   # 4 left: crosses
    await repo.reserve(account_id, "c", 1)   # 3 left: already below
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE subject = 'billing.credits.low'")
    assert len(rows) == 1
    ev = events_pb2.CreditsLow.FromString(bytes(rows[0]["payload"]))
    assert (ev.account_id, ev.available, ev.threshold) == (account_id, 4, LOW_THRESHOLD)


async def test_ledger_is_append_only(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo, credits=5)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("UPDATE ledger_entries SET amount = 1 WHERE account_id = $1", account_id)
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("DELETE FROM ledger_entries WHERE account_id = $1", account_id)


# --- properties ------------------------------------------------------------------------------------

BATCHES = ("b0", "b1", "b2")
CANDIDATES = ("c0", "c1", "c2", "c3", "c4", "c5")


@dataclass(frozen=True)
class Op:
    kind: str  # reserve | matched | completed (amount = results ingest reports) | failed | grant
    batch: str = ""
    candidate: str = ""
    amount: int = 0


ops = st.one_of(
    st.builds(Op, st.just("reserve"), st.sampled_from(BATCHES), st.just(""), st.integers(1, 6)),
    st.builds(Op, st.just("matched"), st.sampled_from(BATCHES), st.sampled_from(CANDIDATES)),
    st.builds(Op, st.just("completed"), st.sampled_from(BATCHES), st.just(""), st.integers(0, 6)),
    st.builds(Op, st.just("failed"), st.sampled_from(BATCHES)),
    st.builds(Op, st.just("grant"), st.just(""), st.just(""), st.integers(1, 5)),
)
# Rounds of operations; the operations of one round run concurrently, and a round may repeat an earlier
# one (a client retry or an event redelivery).
rounds = st.lists(st.lists(ops, min_size=1, max_size=6), min_size=1, max_size=8)


async def apply(repo: Repository, account_id: int, op: Op, grant_no: int) -> None:
    if op.kind == "reserve":
        try:
            await repo.reserve(account_id, op.batch, op.amount)
        except DomainError as exc:
            assert exc.reason in ("INSUFFICIENT_CREDITS", "RESERVATION_CONFLICT")
    elif op.kind == "matched":
        await repo.capture(account_id, op.batch, op.candidate)
    elif op.kind == "completed":
        await repo.release(account_id, op.batch, op.amount)
    elif op.kind == "failed":
        await repo.release(account_id, op.batch)
    else:
        await repo.grant(account_id, op.amount, 0, "test", f"g{grant_no}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=rounds, initial=st.integers(0, 8), replay=st.lists(st.integers(0, 7), max_size=3))
async def test_ledger_properties(repo: Repository, pool: asyncpg.Pool, plan: list[list[Op]], initial: int,
                                 replay: list[int]) -> None:
    account_id = await new_account(repo, credits=initial, name="prop")
    schedule = list(plan) + [plan[i % len(plan)] for i in replay]  # retries / redeliveries of whole rounds
    matched: set[tuple[str, str]] = set()
    for n, round_ in enumerate(schedule):
        matched |= {(o.batch, o.candidate) for o in round_ if o.kind == "matched"}
        await asyncio.gather(*(apply(repo, account_id, op, n * 10 + i) for i, op in enumerate(round_)))
        bal = await repo.balance(account_id)
        assert bal.available >= 0 and bal.held >= 0
        assert bal == await repo.recompute_balance(account_id)

    async with pool.acquire() as conn:
        captures = await conn.fetch(
            "SELECT batch_id, candidate_id FROM ledger_entries WHERE account_id = $1 AND kind = 'capture'",
            account_id)
        per_batch = await conn.fetch(
            """SELECT b.batch_id, b.reserved, b.captured, b.released, b.settled_at IS NOT NULL AS settled,
                      coalesce(sum(l.amount) FILTER (WHERE l.kind = 'reserve'), 0) AS l_reserved,
                      coalesce(sum(l.amount) FILTER (WHERE l.kind = 'capture'), 0) AS l_captured,
                      coalesce(sum(l.amount) FILTER (WHERE l.kind = 'release'), 0) AS l_released
               FROM batches b LEFT JOIN ledger_entries l
                 ON l.account_id = b.account_id AND l.batch_id = b.batch_id
               WHERE b.account_id = $1 GROUP BY b.batch_id, b.reserved, b.captured, b.released, b.settled_at""",
            account_id)
    # No capture without a result, and never twice for a candidate.
    pairs = [(r["batch_id"], r["candidate_id"]) for r in captures]
    assert set(pairs) <= matched and len(pairs) == len(set(pairs))
    for b in per_batch:
        assert (b["l_reserved"], b["l_captured"], b["l_released"]) == (b["reserved"], b["captured"], b["released"])
        assert b["captured"] + b["released"] <= b["reserved"]
        if b["settled"]:
            # Charged + released = reserved once the batch is settled.
            assert b["captured"] + b["released"] == b["reserved"]
    # Finish every batch, and deliver the results a closed batch still awaits: then charged + released =
    # reserved everywhere and nothing is held.
    for batch in BATCHES:
        closed = await repo.release(account_id, batch)
        for n in range(closed.held):
            assert await repo.capture(account_id, batch, f"in-flight-{n}")
        final = await repo.batch(account_id, batch)
        assert final is None or (final.settled and final.captured + final.released == final.reserved)
    bal = await repo.balance(account_id)
    assert bal.held == 0 and bal == await repo.recompute_balance(account_id)
    assert bal.available == bal.granted - bal.captured
