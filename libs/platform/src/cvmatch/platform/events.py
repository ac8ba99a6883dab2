"""Event conventions shared by producers and consumers: streams, subjects, CloudEvents headers.

One JetStream stream per producing service (`INGEST` <= `ingest.>`, ...). The payload is the protobuf
event message; headers are CloudEvents binary mode with `Nats-Msg-Id` = `ce-id`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

STREAMS: Mapping[str, tuple[str, ...]] = {
    "INGEST": ("ingest.>",),
    "MATCHER": ("matcher.>",),
    "BILLING": ("billing.>",),
    "NOTIFIER": ("notifier.>",),
    "DLQ": ("dlq.>",),
}

# Seven days of history lets a consumer that was down for a weekend catch up.
STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600.0
DUPLICATE_WINDOW_SECONDS = 120.0

M = TypeVar("M", bound=Message)


def stream_for(subject: str) -> str:
    """The stream that holds a subject."""
    prefix = subject.split(".", 1)[0]
    for name, subjects in STREAMS.items():
        if any(s.split(".", 1)[0] == prefix for s in subjects):
            return name
    raise KeyError(f"no stream holds subject {subject!r}")


async def ensure_stream(js: JetStreamContext, name: str) -> None:
    """Creates the stream, or updates its subjects when they changed."""
    config = StreamConfig(
        name=name,
        subjects=list(STREAMS[name]),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=DiscardPolicy.OLD,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        return
    if sorted(info.config.subjects or []) != sorted(config.subjects or []):
        await js.update_stream(config)


async def ensure_streams(js: JetStreamContext) -> None:
    """Creates every stream of the system (cheap and idempotent)."""
    for name in STREAMS:
        await ensure_stream(js, name)


def cloudevent_headers(event_id: str, ce_type: str, source: str, time: dt.datetime, subject: str) -> dict[str, str]:
    """CloudEvents binary-mode headers plus JetStream's dedupe id."""
    return {
        "Nats-Msg-Id": event_id,
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": ce_type,
        "ce-source": source,
        "ce-time": time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "ce-subject": subject,
        "content-type": "application/protobuf",
    }


@dataclass(frozen=True)
class Event(Generic[M]):
    """A decoded event as a consumer sees it."""

    id: str
    type: str
    source: str
    subject: str
    time: str
    payload: M
    deliveries: int
