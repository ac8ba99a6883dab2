"""Rate limits with state in Postgres: exact per-minute sliding window, per-day counter, burst, concurrent
slots; granted to gateways in blocks (`Repository.lease_quota`), one request being a block of one."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from cvmatch.billing import domain
from cvmatch.billing.config import Settings
from cvmatch.billing.domain import Plan, PlanLimits
from cvmatch.billing.repository import Repository
from cvmatch.platform.db import create_pool

from .conftest import new_account


async def _one(repo: Repository, key_id: str, lease: str | None = None,
               release: list[str] | None = None) -> domain.QuotaGrant:
    """One request as a gateway without a block in hand asks for it: a block of one (and a slot)."""
    return await repo.lease_quota(key_id, 1, [lease] if lease else [], release=release or [])


def _allowed(g: domain.QuotaGrant, slot: bool = False) -> bool:
    return g.granted == 1 and (not slot or g.leases_granted == 1)


async def test_200_concurrent_requests_admit_exactly_60(repo: Repository, settings: Settings) -> None:
    account_id = await new_account(repo, plan=Plan.FREE)
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    # Two pools stand for two billing replicas (behind several gateways): one shared limit.
    other_pool = await create_pool(settings.common)
    try:
        other = Repository(other_pool, pepper=settings.key_pepper)
        start = time.time()
        grants = await asyncio.gather(*(_one(repo if i % 2 else other, key.key_id) for i in range(200)))
    finally:
        await other_pool.close()
    allowed = [g for g in grants if _allowed(g)]
    refused = [g for g in grants if not _allowed(g)]
    assert len(allowed) == 60 and len(refused) == 140
    assert sorted(g.remaining for g in allowed) == list(range(60))
    assert all(g.limit == 60 for g in grants)
    now = time.time()
    for g in refused:
        assert g.remaining == 0 and g.refused_by is domain.LimitKind.PER_MINUTE
        # The oldest admitted request leaves the window 60 s after it was admitted.
        assert 58 <= g.retry_after_seconds <= 60
        assert start + 59 <= g.reset_unix <= now + 61
        assert abs((g.reset_unix - now) - g.retry_after_seconds) <= 2


async def test_window_slides_and_refusals_are_not_counted(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo)
    await repo.set_plan(account_id, Plan.CUSTOM, PlanLimits(3, 1_000, 100, 5, 10))
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    results = [await _one(repo, key.key_id) for _ in range(5)]
    assert [_allowed(r) for r in results] == [True, True, True, False, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0, 0]
    # Age the first admission by 59.5 s (instead of sleeping a minute): it leaves the window half a
    # second from now, and only its slot frees.
    async with pool.acquire() as conn:
        await conn.execute("""UPDATE rate_limit_log SET at = at - interval '59.5 seconds'
                              WHERE at = (SELECT min(at) FROM rate_limit_log)""")
    assert not _allowed(await _one(repo, key.key_id))
    await asyncio.sleep(0.7)
    r = await _one(repo, key.key_id)
    assert _allowed(r) and r.remaining == 0


async def test_per_day_limit(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo)
    await repo.set_plan(account_id, Plan.CUSTOM, PlanLimits(100, 4, 100, 5, 10))
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    results = [await _one(repo, key.key_id) for _ in range(6)]
    assert [_allowed(r) for r in results] == [True] * 4 + [False] * 2
    refused = results[-1]
    assert refused.refused_by is domain.LimitKind.PER_DAY
    assert refused.limit == 4 and refused.remaining == 0
    assert refused.reset_unix % 86_400 == 0  # midnight UTC
    assert 1 <= refused.retry_after_seconds <= 86_400
    # A new UTC day resets the counter.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE rate_limit_state SET day = day - 1")
    assert _allowed(await _one(repo, key.key_id))


async def test_burst_caps_one_second(repo: Repository) -> None:
    account_id = await new_account(repo)
    await repo.set_plan(account_id, Plan.CUSTOM, PlanLimits(1_000, 10_000, 5, 5, 10))
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    grants = await asyncio.gather(*(_one(repo, key.key_id) for _ in range(20)))
    assert sum(_allowed(g) for g in grants) == 5
    assert all(g.retry_after_seconds == 1 and g.refused_by is domain.LimitKind.BURST
               for g in grants if not _allowed(g))
    await asyncio.sleep(1.1)
    assert _allowed(await _one(repo, key.key_id))


async def test_blocks_shrink_to_one_near_the_end_and_plan_changes_take_effect(repo: Repository) -> None:
    account_id = await new_account(repo)  # Free: 60 per minute
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    g = await repo.lease_quota(key.key_id, 15)
    assert (g.granted, g.remaining) == (15, 45)
    # A block is granted in full while three times its size is left; after that, a request at a time.
    assert [(await repo.lease_quota(key.key_id, 15)).granted for _ in range(3)] == [15, 1, 1]
    await repo.set_plan(account_id, Plan.PRO, domain.limits_for(Plan.PRO))
    g = await repo.lease_quota(key.key_id, 11)
    assert g.granted == 11 and g.limit == 300 and g.remaining == 300 - 32 - 11


async def _minute_used_matches_log(pool: asyncpg.Pool, key_id: str) -> None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT s.minute_used, (SELECT coalesce(sum(cost), 0) FROM rate_limit_log l WHERE l.key_id = s.key_id)
                      AS logged
               FROM rate_limit_state s WHERE s.key_id = $1::uuid""", key_id)
    assert row is not None and row["minute_used"] == row["logged"]


async def test_minute_count_stays_equal_to_the_log_through_expiry_and_sweep(
        repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo)
    await repo.set_plan(account_id, Plan.CUSTOM, PlanLimits(5, 1_000, 100, 5, 10))
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    assert all([_allowed(await _one(repo, key.key_id)) for _ in range(5)])
    assert not _allowed(await _one(repo, key.key_id))
    await _minute_used_matches_log(pool, key.key_id)
    async with pool.acquire() as conn:  # two admissions leave the window
        await conn.execute("""UPDATE rate_limit_log SET at = at - interval '61 seconds'
                              WHERE at IN (SELECT at FROM rate_limit_log ORDER BY at LIMIT 2)""")
    r = await _one(repo, key.key_id)
    assert _allowed(r) and r.remaining == 1
    await _minute_used_matches_log(pool, key.key_id)
    # A key quiet for a minute is swept; its next request starts from an empty window.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE rate_limit_log SET at = at - interval '2 minutes'")
        await conn.execute("UPDATE rate_limit_state SET last_at = last_at - interval '2 minutes'")
    assert await repo.purge_rate_log() == 4
    await _minute_used_matches_log(pool, key.key_id)
    assert (await _one(repo, key.key_id)).remaining == 4


async def test_concurrency_slots_are_shared_released_and_expire(repo: Repository, settings: Settings) -> None:
    account_id = await new_account(repo, plan=Plan.FREE)  # 5 concurrent requests
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    other_pool = await create_pool(settings.common)
    try:
        other = Repository(other_pool, pepper=settings.key_pepper)
        leases = [str(uuid.uuid4()) for _ in range(20)]
        grants = await asyncio.gather(*(
            _one(repo if i % 2 else other, key.key_id, lease) for i, lease in enumerate(leases)))
        held = [lease for lease, g in zip(leases, grants, strict=True) if _allowed(g, slot=True)]
        refused = [g for g in grants if not _allowed(g, slot=True)]
        assert len(held) == 5 and len(refused) == 15
        assert all(g.refused_by is domain.LimitKind.CONCURRENCY and g.retry_after_seconds == 1
                   and g.concurrent_limit == 5 and g.concurrent_active == 5 for g in refused)
        assert max(g.concurrent_active for g in grants if _allowed(g, slot=True)) == 5
        # A request refused for want of a slot was still granted its place in the minute (a gateway keeps
        # it for its next request and gives it back unspent): 20 of 60 used.
        assert (await _one(repo, key.key_id)).remaining == 39  # no slot asked: not concurrency-limited
        assert await other.release_leases([held[0], held[0], "not-a-uuid"]) == 1
        assert await repo.release_leases([held[0]]) == 0
        fresh = str(uuid.uuid4())
        assert _allowed(await _one(repo, key.key_id, fresh), slot=True)
        assert not _allowed(await _one(repo, key.key_id, str(uuid.uuid4())), slot=True)
        # A call frees the slots it carries before it grants: the gateway's way of releasing under load.
        carried = str(uuid.uuid4())
        g = await _one(other, key.key_id, carried, release=[held[4], "junk"])
        assert _allowed(g, slot=True) and g.concurrent_active == 5
        assert await repo.release_leases([held[4]]) == 0
        assert await repo.release_leases([carried]) == 1
        held = held[:4]
        fresh2 = str(uuid.uuid4())
        assert _allowed(await _one(repo, key.key_id, fresh2), slot=True)
        # A crashed gateway never releases: its slots free themselves when their lease expires. Renewal
        # keeps a running request's slot.
        async with other_pool.acquire() as conn:
            await conn.execute("UPDATE concurrency_leases SET expires_at = now() + interval '0.3 seconds'")
        assert await repo.renew_leases([fresh, fresh2], 30) == 2
        await asyncio.sleep(0.4)
        assert await repo.renew_leases(held[1:], 30) == 0  # expired slots are not revived
        g = await _one(repo, key.key_id, str(uuid.uuid4()))
        assert _allowed(g, slot=True) and g.concurrent_active == 3
    finally:
        await other_pool.close()


# --- blocks of allowance for gateways (LeaseQuota) ---------------------------------------------------------


async def test_concurrent_blocks_never_grant_more_than_the_limit(repo: Repository, settings: Settings,
                                                                 pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo, plan=Plan.FREE)  # 60 per minute
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    other_pool = await create_pool(settings.common)
    try:
        other = Repository(other_pool, pepper=settings.key_pepper)
        grants = await asyncio.gather(*((repo if i % 2 else other).lease_quota(key.key_id, 7) for i in range(30)))
    finally:
        await other_pool.close()
    # Blocks of 7 while 21 are left, then one at a time: the window fills exactly.
    assert sum(g.granted for g in grants) == 60
    assert sorted(g.granted for g in grants if g.granted) == [1] * 18 + [7] * 6
    # Each block covers its own range of the countdown.
    granted = [g for g in grants if g.granted]
    ranges = sorted(n for g in granted for n in range(g.remaining, g.remaining + g.granted))
    assert ranges == list(range(60))
    assert len({g.grant_id for g in granted}) == len(granted)
    refused = [g for g in grants if not g.granted]
    assert len(refused) == 6 and all(g.refused_by is domain.LimitKind.PER_MINUTE and 58 <= g.retry_after_seconds <= 60
                                     and g.remaining == 0 for g in refused)
    await _minute_used_matches_log(pool, key.key_id)


async def test_unspent_requests_come_back_once(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo)
    await repo.set_plan(account_id, Plan.CUSTOM, PlanLimits(100, 120, 1_000, 5, 10))
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    a = await repo.lease_quota(key.key_id, 30)
    b = await repo.lease_quota(key.key_id, 20)
    assert (a.granted, a.remaining, b.granted, b.remaining) == (30, 70, 20, 50)
    # Of the first block 27 were spent, of the second none: 23 come back to the minute and the day. A
    # settlement says how many were spent, so sent again (its answer lost) it gives back nothing more.
    for _ in range(2):
        c = await repo.lease_quota(key.key_id, 0, returns=[(a.grant_id, 27), (b.grant_id, 0)])
        assert (c.granted, c.remaining) == (0, 73)
    await _minute_used_matches_log(pool, key.key_id)
    # A block never gives back more than it granted, nor to another key; a later, smaller figure (a
    # request taken from the block was refused after all) gives back the difference.
    other_key, _ = await repo.create_key(account_id, "k2", ["match:execute"], None)
    await repo.lease_quota(other_key.key_id, 0, returns=[(a.grant_id, 0)])
    d = await repo.lease_quota(key.key_id, 0, returns=[(a.grant_id, 50), (a.grant_id, 26), (b.grant_id, 5)])
    assert (d.granted, d.remaining) == (0, 74)
    await _minute_used_matches_log(pool, key.key_id)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT day_count FROM rate_limit_state WHERE key_id = $1::uuid",
                                   key.key_id) == 26


async def test_blocks_respect_day_and_burst(repo: Repository) -> None:
    account_id = await new_account(repo)
    await repo.set_plan(account_id, Plan.CUSTOM, PlanLimits(1_000, 40, 30, 5, 10))
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    first = await repo.lease_quota(key.key_id, 10)
    assert first.granted == 10
    # The one-second burst leaves 20: below three blocks, so one at a time, then none.
    assert [(await repo.lease_quota(key.key_id, 10)).granted for _ in range(2)] == [1, 1]
    while (g := await repo.lease_quota(key.key_id, 1)).granted:
        pass
    assert g.refused_by is domain.LimitKind.BURST and g.retry_after_seconds == 1
    await asyncio.sleep(1.1)
    assert (await repo.lease_quota(key.key_id, 3)).granted == 3  # then the day's 40 binds
    while (g := await repo.lease_quota(key.key_id, 1)).granted:
        pass
    assert g.refused_by is domain.LimitKind.PER_DAY and g.limit == 40 and g.remaining == 0


async def test_blocks_of_slots(repo: Repository) -> None:
    account_id = await new_account(repo, plan=Plan.FREE)  # 5 concurrent requests
    key, _ = await repo.create_key(account_id, "k", ["match:execute"], None)
    leases = [str(uuid.uuid4()) for _ in range(4)]
    g = await repo.lease_quota(key.key_id, 2, leases[:3])
    assert (g.granted, g.leases_granted, g.concurrent_active, g.concurrent_limit) == (2, 3, 3, 5)
    # Slots only (no requests wanted): two of the three asked for fit.
    more = [str(uuid.uuid4()) for _ in range(3)]
    g = await repo.lease_quota(key.key_id, 0, more)
    assert (g.granted, g.leases_granted, g.concurrent_active) == (0, 2, 5)
    assert g.refused_by is domain.LimitKind.NONE
    g = await repo.lease_quota(key.key_id, 1, [leases[3]])
    assert (g.granted, g.leases_granted) == (1, 0)
    assert g.refused_by is domain.LimitKind.CONCURRENCY and g.retry_after_seconds == 1
    # Freed slots are granted again in the same call.
    g = await repo.lease_quota(key.key_id, 0, [leases[3]], release=leases[:2])
    assert (g.leases_granted, g.concurrent_active) == (1, 4)
    assert await repo.release_leases(more[:2]) == 2
    assert await repo.release_leases(more[2:]) == 0  # never granted
