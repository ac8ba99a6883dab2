"""API keys against the real database: authentication, scopes, revocation, expiry, no stored secret."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest

from cvmatch.billing.repository import Repository
from cvmatch.platform.errors import DomainError

from .conftest import new_account


async def test_authenticate_returns_account_and_implied_scopes(repo: Repository) -> None:
    account_id = await new_account(repo)
    key, secret = await repo.create_key(account_id, "ci", ["match:execute"], None)
    auth = await repo.authenticate(secret)
    assert auth.key_id == key.key_id and auth.account.account_id == account_id
    assert {"match:execute", "match:read"} <= auth.scopes
    assert (await repo.authenticate(secret, "match:read")).key_id == key.key_id


@pytest.mark.parametrize("bad", ["", "cvm_live_", "sk_live_abc", "cvm_live_" + "A" * 36])
async def test_malformed_keys_are_401_without_lookup(repo: Repository, bad: str) -> None:
    with pytest.raises(DomainError) as e:
        await repo.authenticate(bad)
    assert e.value.reason == "INVALID_API_KEY" and e.value.http_status == 401


async def test_unknown_well_formed_key_is_401(repo: Repository) -> None:
    from cvmatch.billing import domain

    with pytest.raises(DomainError) as e:
        await repo.authenticate(domain.generate_key().secret)
    assert e.value.reason == "INVALID_API_KEY"


async def test_missing_scope_is_403(repo: Repository) -> None:
    account_id = await new_account(repo)
    _, secret = await repo.create_key(account_id, "reader", ["match:execute"], None)
    with pytest.raises(DomainError) as e:
        await repo.authenticate(secret, "cvdeepmatch")
    assert e.value.reason == "MISSING_PERMISSION" and e.value.http_status == 403
    _, admin = await repo.create_key(account_id, "admin", ["admin"], None)
    assert "cvdeepmatch" in (await repo.authenticate(admin, "cvdeepmatch")).scopes


async def test_revocation_is_immediate(repo: Repository) -> None:
    account_id = await new_account(repo)
    key, secret = await repo.create_key(account_id, "k", ["match:execute"], None)
    await repo.authenticate(secret)
    revoked = await repo.revoke_key(account_id, key.key_id)
    assert revoked.revoked_at is not None
    with pytest.raises(DomainError) as e:
        await repo.authenticate(secret)
    assert e.value.reason == "INVALID_API_KEY"
    again = await repo.revoke_key(account_id, key.key_id)
    assert again.revoked_at == revoked.revoked_at
    other = await new_account(repo, name="other")
    with pytest.raises(DomainError) as e:
        await repo.revoke_key(other, key.key_id)
    assert e.value.reason == "NOT_FOUND"


async def test_expired_key_is_refused(repo: Repository) -> None:
    account_id = await new_account(repo)
    _, past = await repo.create_key(account_id, "old", ["match:execute"], dt.datetime.now(dt.UTC) - dt.timedelta(1))
    with pytest.raises(DomainError):
        await repo.authenticate(past)
    _, soon = await repo.create_key(account_id, "soon", ["match:execute"],
                                    dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    await repo.authenticate(soon)
    await asyncio.sleep(1.2)
    with pytest.raises(DomainError):
        await repo.authenticate(soon)


async def test_last_used_is_recorded_once_a_minute(repo: Repository) -> None:
    account_id = await new_account(repo)
    key, secret = await repo.create_key(account_id, "k", ["match:execute"], None)
    assert key.last_used_at is None
    await repo.authenticate(secret)
    first = (await repo.list_keys(account_id))[0].last_used_at
    assert first is not None
    await repo.authenticate(secret)
    assert (await repo.list_keys(account_id))[0].last_used_at == first


async def test_no_table_contains_a_key_secret(repo: Repository, pool: asyncpg.Pool) -> None:
    account_id = await new_account(repo, credits=10)
    key, secret = await repo.create_key(account_id, "k", ["admin"], None)
    await repo.authenticate(secret)
    await repo.lease_quota(key.key_id, 1, [str(uuid.uuid4())])  # with a concurrent-request slot
    await repo.reserve(account_id, "b1", 2)
    body = secret[len("cvm_live_"):]
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'billing' ORDER BY tablename")
        names = [t["tablename"] for t in tables]
        assert {"api_keys", "ledger_entries", "rate_limit_state", "rate_limit_log", "concurrency_leases",
                "outbox"} <= set(names)
        rows = 0
        for name in names:
            for r in await conn.fetch(f"SELECT t::text AS row FROM billing.{name} t"):
                rows += 1
                assert secret not in r["row"] and body not in r["row"], name
                # bytea columns render as hex: look for the secret's hex too.
                assert secret.encode().hex() not in r["row"], name
        assert rows > 0
