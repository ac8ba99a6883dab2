"""Billing test fixtures: a migrated billing schema in a fresh database, and a repository on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from cvmatch.billing import domain
from cvmatch.billing.app import MIGRATIONS
from cvmatch.billing.config import Settings
from cvmatch.billing.repository import Repository
from cvmatch.platform.db import create_pool, migrate
from cvmatch.platform.settings import Env

PEPPER = "test-pepper-0123456789abcdef"
LOW_THRESHOLD = 5


def make_settings(database_url: str, nats_url: str = "nats://127.0.0.1:1", **extra: str) -> Settings:
    """Settings as the service would read them from this environment."""
    return Settings.from_env(Env({
        "DATABASE_URL": database_url, "NATS_URL": nats_url, "CVMATCH_ENV": "test",
        "BILLING_KEY_PEPPER": PEPPER, "DB_POOL_MAX": "20", "BILLING_GRPC_PORT": "0",
        "BILLING_LOW_CREDIT_THRESHOLD": str(LOW_THRESHOLD), **extra}))


@pytest.fixture
async def settings(database_url: str) -> Settings:
    """Settings pointing at a fresh, migrated database."""
    s = make_settings(database_url)
    await migrate(s.common, MIGRATIONS)
    return s


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The service's pool (role cvmatch_billing, search_path billing)."""
    p = await create_pool(settings.common)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def repo(pool: asyncpg.Pool, settings: Settings) -> Repository:
    """The repository under test."""
    return Repository(pool, pepper=settings.key_pepper, low_credit_threshold=LOW_THRESHOLD)


async def new_account(repo: Repository, credits: int = 0, plan: domain.Plan = domain.Plan.FREE,
                      name: str = "acme") -> int:
    """Creates an account and returns its id."""
    account = await repo.create_account(name, plan, domain.limits_for(plan), credits)
    return account.account_id
