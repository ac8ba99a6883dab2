"""The platform against real PostgreSQL and nats-server: migrations, outbox, consumers, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest

from cvmatch.api.ingest.v1 import events_pb2
from cvmatch.platform.consumer import Consumer, Subscription
from cvmatch.platform.db import create_pool, migrate
from cvmatch.platform.events import Event, ensure_streams
from cvmatch.platform.outbox import OutboxRelay, enqueue
from cvmatch.platform.settings import CommonSettings, Env


def settings_for(service: str, database_url: str, nats_url: str = "nats://127.0.0.1:1") -> CommonSettings:
    return CommonSettings.from_env(service, Env({"DATABASE_URL": database_url, "NATS_URL": nats_url}))


def write_migrations(tmp_path: Path, name: str, sql: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "0001_init.sql").write_text(sql)
    return d


async def test_concurrent_migrations_leave_one_schema(database_url: str, tmp_path: Path) -> None:
    mig = write_migrations(tmp_path, "m", "CREATE TABLE things (id int PRIMARY KEY);")
    settings = settings_for("alpha", database_url)
    results = await asyncio.gather(*(migrate(settings, mig) for _ in range(2)))
    applied = sorted(len(r) for r in results)
    assert applied == [0, 2]  # one runner applied platform + service migration, the other found them done
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT version FROM alpha.schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == ["0001", "platform_0001"]
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'alpha'") == 1
        owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE schemaname='alpha' AND tablename='things'")
        assert owner == "cvmatch_alpha"
    finally:
        await conn.close()
    # Running again is a no-op; a changed file is refused.
    assert await migrate(settings, mig) == []
    (mig / "0001_init.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(Exception, match="changed after it was applied"):
        await migrate(settings, mig)


async def test_service_role_cannot_touch_another_schema(database_url: str, tmp_path: Path) -> None:
    a = settings_for("alpha", database_url)
    b = settings_for("beta", database_url)
    await migrate(a, write_migrations(tmp_path, "a", "CREATE TABLE secrets (v text);"))
    await migrate(b, write_migrations(tmp_path, "b", "CREATE TABLE stuff (v text);"))
    pool = await create_pool(b)
    try:
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO stuff VALUES ('ok')")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT * FROM alpha.secrets")
    finally:
        await pool.close()


class Harness:
    """A producer schema with an outbox and a consumer schema that records effects."""

    def __init__(self, database_url: str, nats_url: str, tmp_path: Path) -> None:
        self.database_url = database_url
        self.nats_url = nats_url
        self.tmp = tmp_path
        self.suffix = uuid.uuid4().hex[:8]

    async def setup(self) -> None:
        self.producer = settings_for("producer", self.database_url, self.nats_url)
        self.consumer = settings_for("consumer", self.database_url, self.nats_url)
        await migrate(self.producer, write_migrations(self.tmp, "p", "CREATE TABLE batches (id text PRIMARY KEY);"))
        await migrate(self.consumer, write_migrations(
            self.tmp, "c", "CREATE TABLE effects (event_id text, batch_id text, n serial PRIMARY KEY);"))
        self.ppool = await create_pool(self.producer)
        self.cpool = await create_pool(self.consumer)
        self.nc = await nats.connect(self.nats_url)
        self.js = self.nc.jetstream()
        await ensure_streams(self.js)

    async def close(self) -> None:
        await self.nc.drain()
        await self.ppool.close()
        await self.cpool.close()

    async def produce(self, batch_id: str, subject: str) -> str:
        async with self.ppool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO batches VALUES ($1)", batch_id)
            return await enqueue(conn, subject, events_pb2.BatchCreated(batch_id=batch_id, total_candidates=3))

    async def effects(self, batch_id: str) -> int:
        async with self.cpool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM effects WHERE batch_id = $1", batch_id))


async def record_effect(conn: asyncpg.Connection, event: Event[events_pb2.BatchCreated]) -> None:
    await conn.execute("INSERT INTO effects (event_id, batch_id) VALUES ($1, $2)", event.id, event.payload.batch_id)


async def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_outbox_event_is_consumed_by_another_service(database_url: str, nats_url: str, tmp_path: Path) -> None:
    h = Harness(database_url, nats_url, tmp_path)
    await h.setup()
    subject = f"ingest.batch.created{h.suffix}"
    relay = OutboxRelay(h.ppool, h.js, "cvmatch/producer", poll_seconds=0.05)
    consumer = Consumer(h.js, h.cpool, f"consumer{h.suffix}",
                        Subscription(subject, events_pb2.BatchCreated, record_effect))
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        batch = f"b-{h.suffix}"
        await h.produce(batch, subject)
        await wait_until(lambda: _eq(h.effects(batch), 1))
        # Published rows are marked, never re-sent by the relay.
        async with h.ppool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        # The message carries CloudEvents headers and the dedupe id.
        msg = await h.js.get_last_msg("INGEST", subject)
        assert msg.headers is not None
        assert msg.headers["ce-type"] == "cvmatch.api.ingest.v1.BatchCreated"
        assert msg.headers["Nats-Msg-Id"] == msg.headers["ce-id"]
        assert msg.headers["ce-source"] == "cvmatch/producer"
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await h.close()


async def _eq(coro, value: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await coro == value)


class SimulatedCrash(BaseException):
    """Escapes every handler, like a process killed between commit and ack."""


async def test_crash_between_commit_and_ack_has_no_second_effect(database_url: str, nats_url: str,
                                                                 tmp_path: Path) -> None:
    h = Harness(database_url, nats_url, tmp_path)
    await h.setup()
    subject = f"ingest.batch.created{h.suffix}"
    name = f"consumer{h.suffix}"
    crashed = asyncio.Event()

    async def crash(_: Event[events_pb2.BatchCreated]) -> None:
        crashed.set()
        raise SimulatedCrash()

    sub = Subscription(subject, events_pb2.BatchCreated, record_effect)
    relay = OutboxRelay(h.ppool, h.js, "cvmatch/producer", poll_seconds=0.05)
    relay_task = asyncio.create_task(relay.run())
    first = Consumer(h.js, h.cpool, name, sub, ack_wait_seconds=1.0, after_commit=crash)
    first_task = asyncio.create_task(first.run())
    batch = f"b-{h.suffix}"
    try:
        await h.produce(batch, subject)
        await asyncio.wait_for(crashed.wait(), 20)
        first_task.cancel()
        await asyncio.gather(first_task, return_exceptions=True)
        assert await h.effects(batch) == 1  # committed, never acked

        redelivered = asyncio.Event()

        async def seen(event: Event[events_pb2.BatchCreated]) -> None:
            if event.deliveries >= 2:
                redelivered.set()

        second = Consumer(h.js, h.cpool, name, sub, ack_wait_seconds=1.0, after_commit=seen)
        second_task = asyncio.create_task(second.run())
        await asyncio.wait_for(redelivered.wait(), 20)
        second_task.cancel()
        await asyncio.gather(second_task, return_exceptions=True)
        assert await h.effects(batch) == 1
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await h.close()


async def test_poison_message_ends_on_dead_letter_subject(database_url: str, nats_url: str, tmp_path: Path) -> None:
    h = Harness(database_url, nats_url, tmp_path)
    await h.setup()
    subject = f"ingest.batch.created{h.suffix}"
    name = f"consumer{h.suffix}"
    attempts = 0

    async def always_fails(conn: asyncpg.Connection, event: Event[events_pb2.BatchCreated]) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("cannot apply")

    dlq = await h.nc.subscribe(f"dlq.{name}.>")
    relay = OutboxRelay(h.ppool, h.js, "cvmatch/producer", poll_seconds=0.05)
    consumer = Consumer(h.js, h.cpool, name, Subscription(subject, events_pb2.BatchCreated, always_fails),
                        max_deliveries=3, ack_wait_seconds=2.0)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        await h.produce(f"b-{h.suffix}", subject)
        msg = await dlq.next_msg(timeout=30)
        assert msg.subject == f"dlq.{name}.{subject}"
        assert msg.headers is not None and msg.headers["cvmatch-dlq-deliveries"] == "3"
        assert events_pb2.BatchCreated.FromString(msg.data).batch_id == f"b-{h.suffix}"
        assert attempts == 3
        # A failed handler's transaction rolled back: no processed mark, no effect.
        async with h.cpool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM processed_events") == 0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await h.close()
