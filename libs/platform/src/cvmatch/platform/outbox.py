"""The transactional outbox and its relay to JetStream.

`enqueue` writes an event in the caller's transaction. The relay claims unpublished rows with
`FOR UPDATE SKIP LOCKED` (never "id greater than last seen", which skips rows of slower transactions),
publishes each with `Nats-Msg-Id` = event id, and marks them published in the same transaction, so
several relays can run and a crash only republishes (deduplicated by JetStream and by consumers).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from google.protobuf.message import Message
from nats.js import JetStreamContext

from cvmatch.platform.db import DbConnection
from cvmatch.platform.events import cloudevent_headers

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "cvmatch_outbox"


async def enqueue(conn: DbConnection, subject: str, message: Message, event_id: str | None = None) -> str:
    """Adds an event to the outbox within the caller's transaction; returns its id."""
    eid = event_id or str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO outbox (id, subject, ce_type, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        uuid.UUID(eid), subject, message.DESCRIPTOR.full_name, message.SerializeToString())
    # Delivered at commit: wakes the relay without waiting for its next poll.
    await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return eid


class OutboxRelay:
    """Publishes outbox rows to JetStream until stopped."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, source: str, poll_seconds: float = 0.2,
                 batch_size: int = 200) -> None:
        self._pool = pool
        self._js = js
        self._source = source
        self._poll = poll_seconds
        self._batch = batch_size
        self._wake = asyncio.Event()

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publishes one batch of unpublished rows; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, subject, ce_type, payload, created_at FROM outbox
                   WHERE published_at IS NULL ORDER BY created_at
                   LIMIT $1 FOR UPDATE SKIP LOCKED""", self._batch)
            if not rows:
                return 0
            # Publish concurrently: each await is a JetStream round trip.
            await asyncio.gather(*(self._publish(r) for r in rows))
            await conn.execute("UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1::uuid[])",
                               [r["id"] for r in rows])
            return len(rows)

    async def _publish(self, row: asyncpg.Record) -> None:
        eid = str(row["id"])
        created: dt.datetime = row["created_at"]
        headers = cloudevent_headers(eid, row["ce_type"], self._source, created, row["subject"])
        await self._js.publish(row["subject"], bytes(row["payload"]), headers=headers, timeout=5.0)

    async def purge_published(self, older_than: dt.timedelta = dt.timedelta(days=1)) -> None:
        """Deletes rows published long ago; Postgres stays small."""
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM outbox WHERE published_at < clock_timestamp() - $1::interval",
                               older_than)

    async def run(self) -> None:
        """Relays forever: wakes on NOTIFY or every poll interval."""
        listener: PoolConnectionProxy | None = None
        try:
            listener = await self._pool.acquire()
            await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError):
            log.warning("outbox listener unavailable; polling only")
        cycles = 0
        try:
            while True:
                try:
                    while await self.publish_pending() == self._batch:
                        pass
                    cycles += 1
                    if cycles % 3000 == 0:
                        await self.purge_published()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("outbox relay cycle failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(NOTIFY_CHANNEL, self._on_notify)
                with contextlib.suppress(Exception):
                    await self._pool.release(listener)
