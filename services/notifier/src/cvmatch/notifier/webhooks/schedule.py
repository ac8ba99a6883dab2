"""When to try a webhook again, and when to stop.

Attempt counting (the seed's "retried up to 5 times ... after 1 second, then 2s, 4s, 8s, 16s ...
considered failed after 5 unsuccessful attempts" is ambiguous between 5 and 6 attempts): we read it as
one first attempt plus five *retries*, the retries waiting 1, 2, 4, 8 and 16 s after the previous
failure, so at most ``len(delays_s) + 1`` = 6 attempts, after which the delivery is failed. Attempts
are numbered from 1.

Outcomes:
- 2xx: delivered.
- 410 Gone: stop and disable the endpoint (Standard Webhooks), whatever attempt it was.
- anything else (3xx, 4xx, 5xx, timeouts, connection and TLS errors, a refused destination): retry while
  the schedule lasts. A receiver's 4xx is often a deploy or configuration slip it will fix, and a
  refused destination may resolve publicly again; the bounded schedule keeps this cheap.
- 429 / 503 with ``Retry-After``: wait at least that long (capped at ``retry_after_cap_s``, so a
  receiver cannot park a delivery for a year); never shorter than the schedule's own delay.

The schedule is deterministic (no jitter): deliveries are persisted with a due time and picked up by
whichever replica is free, which spreads them without random delays, and tests can assert the timing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from cvmatch.notifier.webhooks.client import AttemptResult

__all__ = ["DEFAULT_DELAYS_S", "Decision", "Outcome", "RetrySchedule"]

DEFAULT_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$")


class Outcome(StrEnum):
    """What to do with a delivery after an attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    ENDPOINT_GONE = "endpoint_gone"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of an attempt; ``delay_s`` is set only for :attr:`Outcome.RETRY`."""

    outcome: Outcome
    delay_s: float | None = None

    @property
    def disable_endpoint(self) -> bool:
        """The receiver answered 410 Gone: the endpoint should be disabled."""
        return self.outcome is Outcome.ENDPOINT_GONE


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Delays (seconds) before each retry; ``delays_s[i]`` follows failed attempt ``i + 1``."""

    delays_s: tuple[float, ...] = field(default=DEFAULT_DELAYS_S)
    retry_after_cap_s: float = 3600.0

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.delays_s):
            raise ValueError("retry delays must not be negative")
        if self.retry_after_cap_s < 0:
            raise ValueError("the Retry-After cap must not be negative")

    @classmethod
    def of(cls, delays_s: Iterable[float], *, retry_after_cap_s: float = 3600.0) -> RetrySchedule:
        """A schedule from any iterable of delays in seconds."""
        return cls(tuple(float(d) for d in delays_s), retry_after_cap_s)

    @classmethod
    def parse(cls, spec: str, *, retry_after_cap_s: float = 3600.0) -> RetrySchedule:
        """Parse an operator setting such as ``"1,2,4,8,16"`` or ``"5s,5m,30m,2h,5h,10h,1d"``."""
        delays: list[float] = []
        for part in spec.split(","):
            match = _DURATION.match(part.strip().lower())
            if match is None:
                raise ValueError(f"invalid retry delay {part.strip()!r}")
            delays.append(float(match.group(1)) * _UNITS[match.group(2) or ""])
        return cls(tuple(delays), retry_after_cap_s)

    @property
    def max_attempts(self) -> int:
        """The first attempt plus one retry per delay."""
        return len(self.delays_s) + 1

    def delay_after(self, attempt: int) -> float | None:
        """The scheduled wait after failed attempt number ``attempt`` (1-based); None: give up."""
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        return self.delays_s[attempt - 1] if attempt <= len(self.delays_s) else None

    def decide(self, attempt: int, result: AttemptResult) -> Decision:
        """What follows attempt number ``attempt`` (1-based) that produced ``result``."""
        if result.ok:
            return Decision(Outcome.DELIVERED)
        if result.gone:
            return Decision(Outcome.ENDPOINT_GONE)
        delay = self.delay_after(attempt)
        if delay is None:
            return Decision(Outcome.FAILED)
        if result.status_code in (429, 503) and result.retry_after_s is not None:
            delay = max(delay, min(result.retry_after_s, self.retry_after_cap_s))
        return Decision(Outcome.RETRY, delay)
