"""Durable JetStream pull consumers that apply each event exactly once to Postgres.

Every replica of a service binds the same durable consumer (named after the service and subject), so
the work is shared. For each message: in one transaction, record the event id in `processed_events`
(a redelivery finds it and does nothing) and run the handler; commit; then ack. A failure naks with a
growing delay; after `max_deliveries` the message is copied to `dlq.<consumer>.<subject>` and terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic

import asyncpg
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cvmatch.platform.db import DbConnection
from cvmatch.platform.events import Event, M, stream_for
from cvmatch.platform.logging import request_id_var

log = logging.getLogger(__name__)

Handler = Callable[[DbConnection, Event[M]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription(Generic[M]):
    """What one consumer listens to and how it decodes and applies it."""

    subject: str
    message_type: type[M]
    handler: Handler[M]


def durable_name(consumer: str, subject: str) -> str:
    """JetStream durable names cannot contain dots or wildcards."""
    return f"{consumer}__{subject}".replace(".", "_").replace("*", "any").replace(">", "all")


class Consumer(Generic[M]):
    """Runs one durable pull subscription until cancelled."""

    def __init__(
        self,
        js: JetStreamContext,
        pool: asyncpg.Pool,
        consumer: str,
        subscription: Subscription[M],
        *,
        max_deliveries: int = 5,
        ack_wait_seconds: float = 30.0,
        batch_size: int = 16,
        concurrency: int = 4,
        after_commit: Callable[[Event[M]], Awaitable[None]] | None = None,
    ) -> None:
        self._js = js
        self._pool = pool
        self._consumer = consumer
        self._sub = subscription
        self._max_deliveries = max_deliveries
        self._ack_wait = ack_wait_seconds
        self._batch = batch_size
        self._sem = asyncio.Semaphore(concurrency)
        # A test hook: runs after the commit and before the ack (used to prove crash safety).
        self._after_commit = after_commit

    @property
    def durable(self) -> str:
        return durable_name(self._consumer, self._sub.subject)

    async def run(self) -> None:
        """Fetches and applies messages forever."""
        stream = stream_for(self._sub.subject)
        psub = await self._js.pull_subscribe(
            self._sub.subject,
            durable=self.durable,
            stream=stream,
            config=ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait,
                # We count deliveries ourselves to park poison messages on the dead-letter subject.
                max_deliver=-1,
                max_ack_pending=1000,
                filter_subject=self._sub.subject,
            ),
        )
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    msgs = await psub.fetch(self._batch, timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
                    return
                except nats.errors.Error:
                    log.warning("fetch failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                for msg in msgs:
                    await self._sem.acquire()
                    task = asyncio.create_task(self._guarded(msg))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _guarded(self, msg: Msg) -> None:
        try:
            await self.process(msg)
        finally:
            self._sem.release()

    def _decode(self, msg: Msg) -> Event[M]:
        headers = msg.headers or {}
        payload = self._sub.message_type()
        payload.ParseFromString(msg.data)
        fallback = f"{msg.metadata.stream}:{msg.metadata.sequence.stream}"
        eid = headers.get("ce-id") or headers.get("Nats-Msg-Id") or fallback
        return Event(
            id=eid,
            type=headers.get("ce-type", payload.DESCRIPTOR.full_name),
            source=headers.get("ce-source", ""),
            subject=msg.subject,
            time=headers.get("ce-time", ""),
            payload=payload,
            deliveries=msg.metadata.num_delivered,
        )

    async def process(self, msg: Msg) -> None:
        """Applies one message exactly once, then acks; naks or dead-letters on failure."""
        deliveries = msg.metadata.num_delivered
        if deliveries > self._max_deliveries:
            await self._dead_letter(msg, "max deliveries exceeded")
            return
        try:
            event = self._decode(msg)
        except Exception:
            await self._dead_letter(msg, "undecodable payload")
            return
        token = request_id_var.set(event.id)
        try:
            applied = False
            async with self._pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(
                    """INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
                       ON CONFLICT DO NOTHING RETURNING true""", self.durable, event.id)
                if first:
                    await self._sub.handler(conn, event)
                    applied = True
            if self._after_commit is not None:
                await self._after_commit(event)
            await msg.ack()
            if not applied:
                log.info("duplicate event skipped", extra={"event_id": event.id, "subject": msg.subject})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("event handler failed", exc_info=True,
                        extra={"event_id": event.id, "subject": msg.subject, "deliveries": deliveries})
            if deliveries >= self._max_deliveries:
                await self._dead_letter(msg, "handler failed on last delivery")
            else:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=min(30.0, 0.5 * 2 ** (deliveries - 1)))
        finally:
            request_id_var.reset(token)

    async def _dead_letter(self, msg: Msg, why: str) -> None:
        headers: dict[str, Any] = dict(msg.headers or {})
        headers.pop("Nats-Msg-Id", None)
        headers["cvmatch-dlq-reason"] = why
        headers["cvmatch-dlq-consumer"] = self.durable
        headers["cvmatch-dlq-deliveries"] = str(msg.metadata.num_delivered)
        subject = f"dlq.{self._consumer}.{msg.subject}"
        await self._js.publish(subject, msg.data, headers=headers, timeout=5.0)
        # term() removes it from redelivery; the copy on the dead-letter subject is what remains.
        await msg.term()
        log.error("event dead-lettered", extra={"subject": msg.subject, "dlq_subject": subject, "reason": why})
