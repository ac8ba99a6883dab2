"""PostgreSQL: one pool per service, on its own schema and role, and the migration runner.

Each service owns one schema and acts as one role (`cvmatch_<service>` by default): the runner creates
both, and the pool sets `role` and `search_path` at connection start, so every statement runs with
that role's privileges and cannot touch another service's schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cvmatch.platform.settings import CommonSettings

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


# What a handler or repository receives: a bare connection or one borrowed from a pool.
DbConnection = asyncpg.Connection | PoolConnectionProxy


class MigrationError(RuntimeError):
    """A migration file is malformed or was changed after it was applied."""


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise MigrationError(f"invalid SQL identifier {name!r}")
    return name


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A release that skips the session reset query (asyncpg still rolls back an open transaction)."""


async def create_pool(settings: CommonSettings, *, connect_timeout: float = 30.0,
                      reset_sessions: bool = True) -> asyncpg.Pool:
    """Opens the service's pool, retrying while the database comes up.

    `reset_sessions=False` is for hot paths whose statements leave no session state (no SET, LISTEN,
    advisory lock or cursor): it saves the reset round trip that asyncpg otherwise makes on every release.
    """
    dsn = settings.require_database_url()
    deadline = asyncio.get_running_loop().time() + connect_timeout
    delay = 0.2
    while True:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                server_settings={
                    "search_path": _ident(settings.db_schema),
                    "role": _ident(settings.db_role),
                    "application_name": f"cvmatch-{settings.service}",
                },
                command_timeout=60,
                reset=None if reset_sessions else _keep_session,
            )
            assert pool is not None
            return pool
        except (OSError, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("database not ready, retrying", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass(frozen=True)
class Migration:
    """One SQL file to apply once."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def platform_migrations() -> list[Migration]:
    """Tables every service has (outbox, processed events), applied before the service's own."""
    out = []
    for entry in sorted(resources.files("cvmatch.platform").joinpath("sql").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".sql"):
            out.append(Migration(f"platform_{entry.name[:4]}", entry.name, entry.read_text()))
    return out


def load_migrations(directory: Path) -> list[Migration]:
    """The service's `NNNN_name.sql` files in order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION.match(path.name)
        if not m:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(m.group(1), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


async def migrate(settings: CommonSettings, directory: Path) -> list[str]:
    """Creates the role and schema and applies pending migrations; returns the names applied.

    Safe to run twice and from several processes at once: a session advisory lock per schema serialises
    runners, and each migration is recorded with its checksum in the same transaction that applies it.
    """
    schema = _ident(settings.db_schema)
    role = _ident(settings.db_role)
    migrations = platform_migrations() + load_migrations(directory)
    conn = await asyncpg.connect(settings.require_database_url())
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"cvmatch.migrate.{schema}")
        try:
            # Roles are cluster-wide: take a second lock so two services creating roles never race.
            await conn.execute("SELECT pg_advisory_lock(hashtext('cvmatch.migrate.roles'))")
            try:
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                if not exists:
                    await conn.execute(f"CREATE ROLE {role} NOLOGIN")
                await conn.execute(f"GRANT {role} TO CURRENT_USER")
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('cvmatch.migrate.roles'))")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"SET ROLE {role}")
            await conn.execute(f"SET search_path = {schema}")
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    text PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"]: r["checksum"] for r in await conn.fetch(
                "SELECT version, checksum FROM schema_migrations")}
            for m in migrations:
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise MigrationError(f"{m.name} changed after it was applied")
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        m.version, m.name, m.checksum)
                applied.append(m.name)
                log.info("migration applied", extra={"migration": m.name, "schema": schema})
            await conn.execute("RESET ROLE")
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"cvmatch.migrate.{schema}")
    finally:
        await conn.close()
    return applied
