"""Billing rules: plans and their limits, API key format and hashing, scopes, credit packs, the ledger's
arithmetic. Pure Python: no gRPC, asyncpg or NATS here, so every rule is testable without I/O.

Rate limits (what each number means in this implementation):

- `requests_per_minute`: an exact sliding-window log. Requests are granted when the requests granted in
  the 60 seconds before, plus them, do not exceed the limit. Refusals are not counted, so a client that
  backs off recovers exactly when the oldest granted request leaves the window.
- `requests_per_day`: a counter per key and UTC day, reset at 00:00 UTC.
- `burst`: the most requests granted in any one-second sliding window (spike protection for the
  database behind a key). With the seed's plans burst is larger than the per-minute limit, so the
  per-minute limit always binds first there; burst matters for Custom plans with a high per-minute limit.
- `concurrent_requests`: the most requests of a key in flight at once, across every gateway. A gateway
  takes a slot (a lease with an expiry) for each request, releases it when the request ends and renews it
  while a long request runs; the slot of a gateway that crashed expires by itself after `LEASE_SECONDS`,
  so a crash cannot leak a key's slots for longer than that.

Gateways take requests in blocks (`LeaseQuota`): a block of n is granted in full or in part, as many as
every window allows, and counted when granted; what a gateway does not spend comes back to the windows
it was counted in. The limits are checked in the order day, minute, burst, concurrency, and a refusal
names the first that grants nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass

# --- plans -------------------------------------------------------------------------------------------


class Plan(enum.StrEnum):
    """Subscription plans; the values are what the database stores."""

    FREE = "free"
    STARTER = "starter"
    API = "api"
    PRO = "pro"
    ENTERPRISE = "enterprise"
    CUSTOM = "custom"


@dataclass(frozen=True)
class PlanLimits:
    """Limits in force for an account."""

    requests_per_minute: int
    requests_per_day: int
    burst: int
    concurrent_requests: int
    max_cvs_per_job: int


# SkillSync's plan table (per minute / per day / burst / concurrency) and the CV Matching API's per-job CV
# limits (Free 10, Starter 20, API 25). Starter and API are CV Matching API tiers, which only publish the
# default of 60 requests per minute; their per-day, burst and concurrency figures are ours.
PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(60, 1_000, 100, 5, 10),
    Plan.STARTER: PlanLimits(60, 5_000, 100, 10, 20),
    Plan.API: PlanLimits(60, 10_000, 100, 20, 25),
    Plan.PRO: PlanLimits(300, 10_000, 500, 20, 25),
    Plan.ENTERPRISE: PlanLimits(1_000, 50_000, 2_000, 100, 100),
}

# Bounds for Custom limits: the per-minute log keeps one row per admitted request, so it stays bounded.
MAX_REQUESTS_PER_MINUTE = 100_000
MAX_REQUESTS_PER_DAY = 100_000_000
MAX_CVS_PER_JOB = 10_000


def parse_plan(name: str) -> Plan:
    """The plan named `name` (case-insensitive), or InvalidValue."""
    try:
        return Plan(name.strip().lower())
    except ValueError:
        raise InvalidValue("plan", f"unknown plan {name!r}; one of {', '.join(p.value for p in Plan)}") from None


def limits_for(plan: Plan, custom: PlanLimits | None = None) -> PlanLimits:
    """The limits of a plan; a Custom plan takes its limits from `custom`, which must be complete."""
    if plan is Plan.CUSTOM:
        if custom is None:
            raise InvalidValue("custom_limits", "a Custom plan needs custom_limits")
        _check_range("custom_limits.requests_per_minute", custom.requests_per_minute, MAX_REQUESTS_PER_MINUTE)
        _check_range("custom_limits.requests_per_day", custom.requests_per_day, MAX_REQUESTS_PER_DAY)
        _check_range("custom_limits.burst", custom.burst, MAX_REQUESTS_PER_MINUTE)
        _check_range("custom_limits.concurrent_requests", custom.concurrent_requests, 100_000)
        _check_range("custom_limits.max_cvs_per_job", custom.max_cvs_per_job, MAX_CVS_PER_JOB)
        return custom
    return PLAN_LIMITS[plan]


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 1 <= value <= maximum:
        raise InvalidValue(name, f"must be between 1 and {maximum}, got {value}")


class InvalidValue(ValueError):
    """A value broke a rule; `field` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- scopes ------------------------------------------------------------------------------------------

ADMIN = "admin"

# Every scope a key may hold. `match:*` and `cvdeepmatch` come from the CV Matching API and CVDeepMatch;
# the plural resource scopes are SkillSync's.
SCOPES: frozenset[str] = frozenset({
    ADMIN,
    "match:execute", "match:read",
    "cvdeepmatch",
    "matches:read", "matches:write",
    "profiles:read", "profiles:write",
    "messages:read", "messages:write",
    "analytics:read",
    "webhooks:read", "webhooks:write",
})

# A scope that lets a key change something lets it read the same thing.
IMPLIES: dict[str, frozenset[str]] = {
    "match:execute": frozenset({"match:read"}),
    "matches:write": frozenset({"matches:read"}),
    "profiles:write": frozenset({"profiles:read"}),
    "messages:write": frozenset({"messages:read"}),
    "webhooks:write": frozenset({"webhooks:read"}),
    ADMIN: SCOPES,
}

# The CV Matching API creates keys with `match:execute` when no scope is asked for.
DEFAULT_SCOPES: tuple[str, ...] = ("match:execute",)


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The requested scopes, deduplicated in order; unknown names are refused (defaults when empty)."""
    out: list[str] = []
    for raw in scopes:
        scope = raw.strip()
        if scope not in SCOPES:
            raise InvalidValue("scopes", f"unknown scope {raw!r}; one of {', '.join(sorted(SCOPES))}")
        if scope not in out:
            out.append(scope)
    return tuple(out) or DEFAULT_SCOPES


def effective_scopes(granted: Iterable[str]) -> frozenset[str]:
    """The granted scopes with everything they imply."""
    out: set[str] = set()
    for scope in granted:
        out.add(scope)
        out |= IMPLIES.get(scope, frozenset())
    return frozenset(out)


def has_scope(granted: Iterable[str], required: str) -> bool:
    """Whether keys with `granted` may do what needs `required` (empty: nothing needed)."""
    return not required or required in effective_scopes(granted)


# --- API keys ----------------------------------------------------------------------------------------

KEY_PREFIX = "cvm_live_"
_ALPHABET = string.digits + string.ascii_letters  # base62: copy-paste safe, no separators
_RANDOM_CHARS = 30  # ~178 bits
_CHECKSUM_CHARS = 6  # CRC32 in base62
DISPLAY_CHARS = 4  # random characters kept in the listed prefix, so a person can tell keys apart


def _base62(n: int, width: int) -> str:
    chars = []
    for _ in range(width):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars))


def _checksum(prefix: str, body: str) -> str:
    # A CRC over prefix and body, like GitHub's token format: a typo or truncation is caught before any
    # database lookup, and secret scanners can recognise our keys without false positives.
    return _base62(binascii.crc32(f"{prefix}{body}".encode()), _CHECKSUM_CHARS)


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the secret is shown once, only the hash and display prefix are stored."""

    secret: str
    display_prefix: str


def generate_key(prefix: str = KEY_PREFIX) -> NewKey:
    """A new random key `<prefix><30 base62 random><6 base62 checksum>`."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return NewKey(f"{prefix}{body}{_checksum(prefix, body)}", f"{prefix}{body[:DISPLAY_CHARS]}")


def well_formed(secret: str, prefix: str = KEY_PREFIX) -> bool:
    """Whether `secret` has our format and a valid checksum (cheap; no lookup)."""
    if not secret.startswith(prefix) or len(secret) != len(prefix) + _RANDOM_CHARS + _CHECKSUM_CHARS:
        return False
    rest = secret[len(prefix):]
    if any(c not in _ALPHABET for c in rest):
        return False
    body, check = rest[:_RANDOM_CHARS], rest[_RANDOM_CHARS:]
    return hmac.compare_digest(check, _checksum(prefix, body))


def hash_key(pepper: bytes, secret: str) -> bytes:
    """HMAC-SHA256 of the secret keyed with the service's pepper: a leaked table gives no usable key and
    cannot be brute-forced offline without the pepper, which lives only in the service's environment."""
    return hmac.new(pepper, secret.encode(), hashlib.sha256).digest()


def pepper_fingerprint(pepper: bytes) -> str:
    """A short, non-reversible id of the pepper for logs (never the pepper)."""
    return base64.b32encode(hashlib.sha256(b"fingerprint:" + pepper).digest()[:5]).decode().lower()


@dataclass(frozen=True)
class KeyState:
    """What authentication needs to know about a stored key."""

    revoked_at: dt.datetime | None
    expires_at: dt.datetime | None


def key_usable(key: KeyState, now: dt.datetime) -> bool:
    """A key authenticates until it is revoked or reaches its expiry."""
    if key.revoked_at is not None:
        return False
    return key.expires_at is None or key.expires_at > now


# --- credits -----------------------------------------------------------------------------------------

# Credit packs (credits -> price in cents), from the CV Matching API's pricing.
CREDIT_PACKS: dict[int, int] = {100: 100, 500: 400, 1_000: 700}


def credit_pack(credits: int) -> tuple[int, int]:
    """(credits, price_cents) of the pack of that size, or InvalidValue."""
    try:
        return credits, CREDIT_PACKS[credits]
    except KeyError:
        raise InvalidValue("pack", f"no pack of {credits} credits; packs are "
                                   f"{', '.join(str(c) for c in CREDIT_PACKS)}") from None


class Kind(enum.StrEnum):
    """Ledger entry kinds."""

    GRANT = "grant"
    RESERVE = "reserve"
    CAPTURE = "capture"
    RELEASE = "release"


@dataclass(frozen=True)
class Balance:
    """An account's totals. Every number is a sum of ledger entries of one kind.

    A reservation moves credits out of `available` into `held`; a capture turns one held credit into a
    charge; a release returns held credits to `available`.
    """

    granted: int
    reserved: int
    captured: int
    released: int

    @property
    def available(self) -> int:
        """Credits that can be reserved now."""
        return self.granted - self.reserved + self.released

    @property
    def held(self) -> int:
        """Credits reserved by batches that are not settled yet."""
        return self.reserved - self.captured - self.released


@dataclass(frozen=True)
class BatchCredits:
    """One batch's reservation and what became of it."""

    reserved: int
    captured: int
    released: int
    settled: bool
    # The batch's end was seen; credits still held then await captures of results already made.
    closed: bool = False

    @property
    def held(self) -> int:
        """Reserved credits neither captured nor released: the most that can still be charged."""
        return self.reserved - self.captured - self.released


def release_amount(batch: BatchCredits, matched: int | None) -> int:
    """Credits to return when a batch ends: everything still held, except one for each candidate that has
    a result (`matched`, when the batch's end reports it) whose capture has not arrived yet."""
    keep = 0 if matched is None else max(matched - batch.captured, 0)
    return max(batch.held - keep, 0)


def crosses_low(before: int, after: int, threshold: int) -> bool:
    """True once, when the available balance drops from at or above the threshold to below it."""
    return before >= threshold > after


# --- records the repository returns and the servicer renders -----------------------------------------


@dataclass(frozen=True)
class Account:
    """A customer account and the limits in force."""

    account_id: int
    name: str
    plan: Plan
    limits: PlanLimits
    created_at: dt.datetime


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never its secret."""

    key_id: str
    account_id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


@dataclass(frozen=True)
class Authenticated:
    """The result of a successful authentication."""

    key_id: str
    account: Account
    scopes: frozenset[str]


class LimitKind(enum.StrEnum):
    """The limit that refused a request; the values are what the rate-limit function returns."""

    NONE = ""
    PER_MINUTE = "minute"
    PER_DAY = "day"
    BURST = "burst"
    CONCURRENCY = "concurrency"


# How long a concurrent-request slot lives without renewal, and the bounds a caller may ask for.
LEASE_SECONDS = 30
MAX_LEASE_SECONDS = 3600
MAX_LEASES_PER_CALL = 1000


def lease_seconds(requested: int) -> int:
    """The lease lifetime to use: the default when unset, else the request clamped to the bounds."""
    return LEASE_SECONDS if requested <= 0 else min(requested, MAX_LEASE_SECONDS)


# The most requests one LeaseQuota call may ask for: a block is meant to last a gateway under a second.
MAX_QUOTA_REQUESTS = 1000


@dataclass(frozen=True)
class QuotaGrant:
    """A block of a key's allowance handed to a gateway: `granted` requests counted against the shared
    windows now, and the first `leases_granted` of the slots it asked for."""

    granted: int
    grant_id: int
    limit: int
    remaining: int
    reset_unix: int
    retry_after_seconds: int
    refused_by: LimitKind
    concurrent_limit: int
    concurrent_active: int
    leases_granted: int


@dataclass(frozen=True)
class LedgerEntry:
    """One entry of the credit ledger."""

    entry_id: int
    account_id: int
    kind: Kind
    amount: int
    batch_id: str
    candidate_id: str
    grant_id: str | None
    price_cents: int | None
    note: str
    created_at: dt.datetime
