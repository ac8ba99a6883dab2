"""Thin webhook payloads: ``{"data": {...}, "id": ..., "timestamp": ..., "type": ...}``.

Bodies carry ids, statuses, counts, scores and links, never CV text or personal data (DESIGN §8): the
receiver fetches details through the authenticated API. :func:`build_event` enforces that shape (scalar
values, short strings, no field names that suggest text or personal data) instead of trusting callers.

Serialisation is deterministic (sorted keys, compact separators, UTF-8) so the same event always has the
same bytes, hence the same signature, on every attempt and on a replay.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

__all__ = [
    "JSONValue",
    "PayloadError",
    "WebhookEvent",
    "batch_event",
    "build_event",
    "dumps",
    "new_message_id",
]

JSONValue: TypeAlias = bool | int | float | str | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None

MAX_STRING_LENGTH = 512  # long enough for a link, too short for a CV
MAX_LIST_LENGTH = 100
MAX_DEPTH = 3
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Field-name words that mean free text or personal data. A name containing one of them as a
# "_"-separated word is refused: first_name, email, cv_text, filename (CV file names hold names) ...
_FORBIDDEN_WORDS = frozenset(
    {
        "address", "body", "content", "cv", "dob", "email", "filename", "name", "phone", "raw",
        "resume", "summary", "text",
    }
)  # fmt: skip


class PayloadError(ValueError):
    """A webhook payload would carry something that is not allowed (or not JSON)."""


def new_message_id() -> str:
    """A fresh Standard Webhooks message id (``msg_`` + 32 hex digits)."""
    return "msg_" + uuid.uuid4().hex


def dumps(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8, NaN / Infinity refused."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"the payload is not serialisable JSON: {exc}") from None
    return text.encode("utf-8")


def _check(value: Any, path: str, depth: int) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError(f"{path} is not a finite number")
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise PayloadError(f"{path} is longer than {MAX_STRING_LENGTH} characters")
        if any(ord(c) < 0x20 for c in value):
            raise PayloadError(f"{path} contains control characters")
        return
    if depth >= MAX_DEPTH:
        raise PayloadError(f"{path} is nested too deeply")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not _KEY.match(key):
                raise PayloadError(f"{path} has an invalid field name {key!r}")
            if _FORBIDDEN_WORDS.intersection(key.split("_")):
                raise PayloadError(f"{path}.{key} looks like text or personal data")
            _check(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST_LENGTH:
            raise PayloadError(f"{path} has more than {MAX_LIST_LENGTH} items")
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)
        return
    raise PayloadError(f"{path} has an unsupported type {type(value).__name__}")


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise PayloadError("the event time must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event as delivered. ``id`` doubles as the ``webhook-id`` of every attempt."""

    id: str
    type: str
    timestamp: str
    data: Mapping[str, JSONValue]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the body."""
        return {"data": self.data, "id": self.id, "timestamp": self.timestamp, "type": self.type}

    @property
    def body(self) -> bytes:
        """The exact bytes to sign and send."""
        return dumps(self.to_dict())


def build_event(
    event_type: str,
    data: Mapping[str, JSONValue],
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> WebhookEvent:
    """Validate ``data`` and wrap it as an event (``event_type`` like ``batch.completed``)."""
    if not _EVENT_TYPE.match(event_type):
        raise PayloadError(f"invalid event type {event_type!r}")
    _check(dict(data), "data", 0)
    moment = occurred_at if occurred_at is not None else datetime.now(UTC)
    return WebhookEvent(
        id=event_id if event_id is not None else new_message_id(),
        type=event_type,
        timestamp=_timestamp(moment),
        data=dict(data),
    )


def batch_event(
    event_type: str,
    *,
    batch_job_id: str,
    status: str,
    total_candidates: int,
    processed_candidates: int,
    failed_candidates: int = 0,
    average_score: float | None = None,
    top_score: float | None = None,
    link: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> WebhookEvent:
    """The batch lifecycle event (``batch.completed`` / ``batch.failed``): ids, counts, scores, link."""
    data: dict[str, JSONValue] = {
        "batch_job_id": batch_job_id,
        "status": status,
        "total_candidates": total_candidates,
        "processed_candidates": processed_candidates,
        "failed_candidates": failed_candidates,
    }
    if average_score is not None:
        data["average_score"] = average_score
    if top_score is not None:
        data["top_score"] = top_score
    if link is not None:
        data["link"] = link
    return build_event(event_type, data, event_id=event_id, occurred_at=occurred_at)
