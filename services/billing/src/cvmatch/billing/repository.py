"""The only SQL of the billing service. Maps asyncpg errors to domain errors.

Credit operations lock the account's `balances` row first (then the batch row), so an account's
ledger changes are serialised across every replica without deadlocks, and each operation writes its
ledger entry, the cached sums and any outbox event in one transaction. The ledger's unique indexes are
the last word on idempotency: a retried reserve, a redelivered capture or a repeated release finds its
entry and changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cvmatch.billing import domain, events
from cvmatch.billing.domain import (
    Account,
    ApiKey,
    Authenticated,
    Balance,
    BatchCredits,
    Kind,
    LedgerEntry,
    Plan,
    PlanLimits,
    QuotaGrant,
)
from cvmatch.platform import errors
from cvmatch.platform.outbox import enqueue

log = logging.getLogger(__name__)

# What a handler or a pool hands us: a connection, or the pool's proxy of one.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

_ACCOUNT_COLUMNS = """a.id, a.name, a.plan, a.requests_per_minute, a.requests_per_day, a.burst,
                      a.concurrent_requests, a.max_cvs_per_job, a.created_at"""
_KEY_COLUMNS = "id, account_id, name, prefix, scopes, created_at, expires_at, revoked_at, last_used_at"


def _account(row: asyncpg.Record) -> Account:
    return Account(
        account_id=row["id"], name=row["name"], plan=Plan(row["plan"]),
        limits=PlanLimits(row["requests_per_minute"], row["requests_per_day"], row["burst"],
                          row["concurrent_requests"], row["max_cvs_per_job"]),
        created_at=row["created_at"])


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(key_id=str(row["id"]), account_id=row["account_id"], name=row["name"], prefix=row["prefix"],
                  scopes=tuple(row["scopes"]), created_at=row["created_at"], expires_at=row["expires_at"],
                  revoked_at=row["revoked_at"], last_used_at=row["last_used_at"])


def _balance(row: asyncpg.Record) -> Balance:
    return Balance(int(row["granted"]), int(row["reserved"]), int(row["captured"]), int(row["released"]))


_BATCH_COLUMNS = "reserved, captured, released, settled_at, closed_at"


def _batch(row: asyncpg.Record) -> BatchCredits:
    return BatchCredits(row["reserved"], row["captured"], row["released"], row["settled_at"] is not None,
                        row["closed_at"] is not None)


def parse_key_id(key_id: str) -> uuid.UUID:
    """The key id as a UUID, or a 404 (an id that cannot exist names no key)."""
    try:
        return uuid.UUID(key_id)
    except ValueError:
        raise errors.not_found("API key not found") from None


def parse_lease_id(lease_id: str) -> uuid.UUID:
    """A lease id as a UUID, or INVALID_INPUT naming the field."""
    try:
        return uuid.UUID(lease_id)
    except ValueError:
        raise errors.invalid_input("'lease_id' must be a UUID", "lease_id") from None


def _lease_ids(lease_ids: Sequence[str]) -> list[uuid.UUID]:
    out = []
    for raw in lease_ids:
        with contextlib.suppress(ValueError):
            out.append(uuid.UUID(raw))
    return out


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Turns database failures into domain errors; anything unexpected stays an internal error."""
    try:
        yield
    except asyncpg.ForeignKeyViolationError:
        raise errors.not_found("Account not found") from None
    except asyncpg.UniqueViolationError:
        raise errors.conflict("A concurrent request changed the same record; retry") from None
    except asyncpg.CheckViolationError as exc:
        # A CHECK is the last line of defence of a rule the code enforces first: reaching it is a bug or a
        # race that the locks should have prevented, never a reason to write a wrong balance.
        log.error("billing invariant violated", extra={"constraint": exc.constraint_name})
        raise
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
        raise errors.unavailable("Billing database unavailable; retry later") from None


class Repository:
    """Accounts, keys, rate-limit state and the credit ledger in the `billing` schema."""

    def __init__(self, pool: asyncpg.Pool, *, pepper: bytes, key_prefix: str = domain.KEY_PREFIX,
                 low_credit_threshold: int = 0, hot_pool: asyncpg.Pool | None = None) -> None:
        self._pool = pool
        # The per-request path (authentication, rate limits, slots) leaves no session state, so it may use
        # a pool that skips the reset round trip on release.
        self._hot_pool = hot_pool or pool
        self._pepper = pepper
        self._prefix = key_prefix
        self._low = low_credit_threshold

    @contextlib.asynccontextmanager
    async def _tx(self, conn: Conn | None = None) -> AsyncIterator[Conn]:
        """The caller's transaction when it passes one (event handlers), else a new one."""
        with _mapped():
            if conn is not None:
                yield conn
                return
            async with self._pool.acquire() as c, c.transaction():
                yield c

    @contextlib.asynccontextmanager
    async def _one(self) -> AsyncIterator[Conn]:
        """A connection for a single statement: atomic on its own, so no BEGIN/COMMIT round trips."""
        with _mapped():
            async with self._pool.acquire() as c:
                yield c

    @contextlib.asynccontextmanager
    async def _hot(self) -> AsyncIterator[Conn]:
        """Like `_one`, from the per-request pool."""
        with _mapped():
            async with self._hot_pool.acquire() as c:
                yield c

    # --- accounts --------------------------------------------------------------------------------

    async def create_account(self, name: str, plan: Plan, limits: PlanLimits, initial_credits: int = 0) -> Account:
        """Creates an account with an empty balance, plus a grant of `initial_credits` if positive."""
        async with self._tx() as conn:
            row = await conn.fetchrow(
                f"""INSERT INTO accounts AS a (name, plan, requests_per_minute, requests_per_day, burst,
                                             concurrent_requests, max_cvs_per_job)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_ACCOUNT_COLUMNS}""",
                name, plan.value, limits.requests_per_minute, limits.requests_per_day, limits.burst,
                limits.concurrent_requests, limits.max_cvs_per_job)
            assert row is not None
            account = _account(row)
            await conn.execute("INSERT INTO balances (account_id) VALUES ($1)", account.account_id)
            if initial_credits > 0:
                await self._grant(conn, account.account_id, initial_credits, 0, "initial credits", "initial")
            return account

    async def get_account(self, account_id: int) -> Account:
        """The account, or 404."""
        async with self._one() as conn:
            row = await conn.fetchrow(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1", account_id)
        if row is None:
            raise errors.not_found("Account not found")
        return _account(row)

    async def find_account(self, name: str) -> Account | None:
        """The oldest account with this name, if any (used by the local bootstrap)."""
        async with self._one() as conn:
            row = await conn.fetchrow(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.name = $1 ORDER BY a.id LIMIT 1", name)
        return _account(row) if row is not None else None

    async def set_plan(self, account_id: int, plan: Plan, limits: PlanLimits) -> Account:
        """Changes the plan and the limits in force; takes effect on the next rate-limit check."""
        async with self._tx() as conn:
            row = await conn.fetchrow(
                f"""UPDATE accounts AS a SET plan = $2, requests_per_minute = $3, requests_per_day = $4,
                           burst = $5, concurrent_requests = $6, max_cvs_per_job = $7
                    WHERE a.id = $1 RETURNING {_ACCOUNT_COLUMNS}""",
                account_id, plan.value, limits.requests_per_minute, limits.requests_per_day, limits.burst,
                limits.concurrent_requests, limits.max_cvs_per_job)
        if row is None:
            raise errors.not_found("Account not found")
        return _account(row)

    # --- API keys --------------------------------------------------------------------------------

    async def create_key(self, account_id: int, name: str, scopes: Sequence[str],
                         expires_at: dt.datetime | None) -> tuple[ApiKey, str]:
        """Creates a key; returns it and its secret, which is not stored and cannot be shown again."""
        new = domain.generate_key(self._prefix)
        async with self._tx() as conn:
            row = await conn.fetchrow(
                f"""INSERT INTO api_keys (id, account_id, name, prefix, key_hash, scopes, expires_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_KEY_COLUMNS}""",
                uuid.uuid4(), account_id, name, new.display_prefix, domain.hash_key(self._pepper, new.secret),
                list(scopes), expires_at)
        assert row is not None
        return _key(row), new.secret

    async def list_keys(self, account_id: int) -> list[ApiKey]:
        """Every key of the account, revoked and expired ones included, oldest first."""
        async with self._one() as conn:
            rows = await conn.fetch(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at, id", account_id)
        return [_key(r) for r in rows]

    async def revoke_key(self, account_id: int, key_id: str) -> ApiKey:
        """Revokes a key of the account (idempotent: the first revocation time is kept)."""
        kid = parse_key_id(key_id)
        async with self._tx() as conn:
            row = await conn.fetchrow(
                f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())
                    WHERE id = $1 AND account_id = $2 RETURNING {_KEY_COLUMNS}""", kid, account_id)
        if row is None:
            raise errors.not_found("API key not found")
        return _key(row)

    async def authenticate(self, secret: str, required_scope: str = "") -> Authenticated:
        """The key's account and scopes; 401 for a malformed, unknown, expired or revoked key, 403 when
        the key lacks `required_scope`. One round trip, and at most one write per key and minute."""
        secret = secret.strip()
        if not domain.well_formed(secret, self._prefix):
            raise errors.unauthenticated()
        digest = domain.hash_key(self._pepper, secret)
        async with self._hot() as conn:
            # The data-modifying CTE runs whether or not it is referenced; it skips keys used within the
            # last minute so that a busy key is not a write per request.
            row = await conn.fetchrow(
                f"""WITH touch AS (
                        UPDATE api_keys SET last_used_at = clock_timestamp()
                        WHERE key_hash = $1 AND revoked_at IS NULL
                          AND (expires_at IS NULL OR expires_at > now())
                          AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                        RETURNING id)
                    SELECT k.id AS key_id, k.scopes, k.expires_at, k.revoked_at, now() AS db_now,
                           {_ACCOUNT_COLUMNS}
                    FROM api_keys k JOIN accounts a ON a.id = k.account_id
                    WHERE k.key_hash = $1""", digest)
        if row is None or not domain.key_usable(domain.KeyState(row["revoked_at"], row["expires_at"]),
                                                row["db_now"]):
            raise errors.unauthenticated()
        if not domain.has_scope(row["scopes"], required_scope):
            raise errors.permission_denied(f"This API key lacks the '{required_scope}' permission")
        return Authenticated(str(row["key_id"]), _account(row), domain.effective_scopes(row["scopes"]))

    async def lease_quota(self, key_id: str, requests: int, lease_ids: Sequence[str] = (),
                          lease_seconds: int = domain.LEASE_SECONDS, release: Sequence[str] = (),
                          returns: Sequence[tuple[int, int]] = ()) -> QuotaGrant:
        """Grants up to `requests` of the key's allowance (one at a time near the end of a window) and the
        slots `lease_ids` (UUIDs) while its limits allow, in one round trip, after freeing the slots in
        `release` and settling earlier grants of this key: `returns` are `(grant id, spent)`, and what was
        not spent goes back."""
        kid = parse_key_id(key_id)
        leases = [parse_lease_id(lease) for lease in lease_ids]
        async with self._hot() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM lease_rate_quota($1, $2, $3::uuid[], $4, $5::uuid[], $6::bigint[], $7::integer[])",
                kid, min(max(requests, 0), domain.MAX_QUOTA_REQUESTS), leases, domain.lease_seconds(lease_seconds),
                _lease_ids(release), [g for g, _ in returns], [n for _, n in returns])
        assert row is not None
        if not row["known"]:
            raise errors.not_found("API key not found")
        return QuotaGrant(row["granted"], row["grant_id"], row["lim"], row["remaining"], int(row["reset_unix"]),
                          row["retry_after"], domain.LimitKind(row["refused_by"]), row["concurrent_limit"],
                          row["concurrent_active"], row["leases_granted"])

    async def release_leases(self, lease_ids: Sequence[str]) -> int:
        """Frees concurrent-request slots; unknown, malformed or already freed ids are skipped."""
        ids = _lease_ids(lease_ids)
        if not ids:
            return 0
        async with self._hot() as conn:
            status = await conn.execute("DELETE FROM concurrency_leases WHERE lease_id = ANY($1::uuid[])", ids)
        return int(status.split()[-1])

    async def renew_leases(self, lease_ids: Sequence[str], seconds: int = domain.LEASE_SECONDS) -> int:
        """Extends slots that are still held (an expired slot stays expired: its request lost it)."""
        ids = _lease_ids(lease_ids)
        if not ids:
            return 0
        async with self._hot() as conn:
            status = await conn.execute(
                """UPDATE concurrency_leases SET expires_at = clock_timestamp() + make_interval(secs => $2)
                   WHERE lease_id = ANY($1::uuid[]) AND expires_at > clock_timestamp()""",
                ids, domain.lease_seconds(seconds))
        return int(status.split()[-1])

    async def purge_rate_log(self) -> int:
        """Forgets the per-minute log of keys that went quiet and the expired slots of keys that stopped
        calling (active keys prune their own rows on each check)."""
        async with self._tx() as conn:
            removed = await conn.fetchval("SELECT sweep_rate_limits()")
        return int(removed or 0)

    # --- credits ---------------------------------------------------------------------------------

    async def _lock_balance(self, conn: Conn, account_id: int) -> Balance | None:
        row = await conn.fetchrow(
            "SELECT granted, reserved, captured, released FROM balances WHERE account_id = $1 FOR UPDATE",
            account_id)
        return _balance(row) if row is not None else None

    async def _require_balance(self, conn: Conn, account_id: int) -> Balance:
        bal = await self._lock_balance(conn, account_id)
        if bal is None:
            raise errors.not_found("Account not found")
        return bal

    async def _grant(self, conn: Conn, account_id: int, credits: int, price_cents: int,
                     note: str, grant_id: str) -> Balance:
        bal = await self._require_balance(conn, account_id)
        existing = await conn.fetchrow(
            "SELECT amount, price_cents FROM ledger_entries WHERE account_id = $1 AND kind = 'grant' AND grant_id = $2",
            account_id, grant_id)
        if existing is not None:
            if existing["amount"] != credits or (existing["price_cents"] or 0) != price_cents:
                raise errors.conflict(f"Grant {grant_id!r} was already recorded with different values",
                                      "GRANT_CONFLICT")
            return bal
        await conn.execute(
            """INSERT INTO ledger_entries (account_id, kind, amount, grant_id, price_cents, note)
               VALUES ($1, 'grant', $2, $3, $4, $5)""", account_id, credits, grant_id, price_cents, note)
        row = await conn.fetchrow(
            """UPDATE balances SET granted = granted + $2 WHERE account_id = $1
               RETURNING granted, reserved, captured, released""", account_id, credits)
        assert row is not None
        return _balance(row)

    async def grant(self, account_id: int, credits: int, price_cents: int = 0, note: str = "",
                    grant_id: str | None = None) -> Balance:
        """Adds credits (idempotent by `grant_id`; a new id is made when none is given)."""
        async with self._tx() as conn:
            return await self._grant(conn, account_id, credits, price_cents, note, grant_id or str(uuid.uuid4()))

    async def reserve(self, account_id: int, batch_id: str, credits: int) -> tuple[Balance, BatchCredits]:
        """Holds `credits` for a batch. 402 when the available balance is short (nothing is written);
        a retry for the same batch returns the existing reservation."""
        async with self._tx() as conn:
            bal = await self._require_balance(conn, account_id)
            row = await conn.fetchrow(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE account_id = $1 AND batch_id = $2",
                account_id, batch_id)
            if row is not None:
                batch = _batch(row)
                if batch.reserved != credits:
                    raise errors.unprocessable(
                        f"Batch {batch_id!r} already holds a reservation of {batch.reserved} credits",
                        "RESERVATION_CONFLICT")
                return bal, batch
            if bal.available < credits:
                raise errors.insufficient_credits(
                    f"Insufficient credits: {credits} needed, {bal.available} available",
                    required=str(credits), available=str(bal.available))
            await conn.execute(
                "INSERT INTO batches (account_id, batch_id, reserved) VALUES ($1, $2, $3)",
                account_id, batch_id, credits)
            await conn.execute(
                "INSERT INTO ledger_entries (account_id, kind, amount, batch_id) VALUES ($1, 'reserve', $2, $3)",
                account_id, credits, batch_id)
            updated = await conn.fetchrow(
                """UPDATE balances SET reserved = reserved + $2 WHERE account_id = $1
                   RETURNING granted, reserved, captured, released""", account_id, credits)
            assert updated is not None
            new = _balance(updated)
            if domain.crosses_low(bal.available, new.available, self._low):
                await enqueue(conn, events.CREDITS_LOW, events.credits_low(account_id, new.available, self._low))
            return new, BatchCredits(credits, 0, 0, False)

    async def capture(self, account_id: int, batch_id: str, candidate_id: str,
                      conn: Conn | None = None) -> bool:
        """Charges one credit for a candidate whose match result exists; True if charged now.

        Called only for `matcher.candidate.matched`, so a CV without a result is never charged, and never
        twice for a candidate. The credit comes from the batch's reservation while it holds one. A result
        that arrives after the batch released everything (its end was seen first, or it failed while a
        candidate was still being scored) is still charged once: one credit is reserved for that
        candidate and captured at once, if the account has one available; otherwise the result stays
        uncharged and a warning is logged, because the balance never goes below zero.
        """
        async with self._tx(conn) as c:
            bal = await self._lock_balance(c, account_id)
            if bal is None:
                log.warning("capture for an unknown account ignored", extra={"batch_id": batch_id})
                return False
            row = await c.fetchrow(
                f"""SELECT {_BATCH_COLUMNS} FROM batches
                    WHERE account_id = $1 AND batch_id = $2 FOR UPDATE""", account_id, batch_id)
            if row is None:
                # No reservation: the batch was never accepted, so there is nothing to charge against.
                log.warning("capture without a reservation ignored",
                            extra={"batch_id": batch_id, "candidate_id": candidate_id})
                return False
            # The batch row's lock serialises its captures, so this check cannot race with an insert.
            if await c.fetchval(
                    """SELECT 1 FROM ledger_entries WHERE account_id = $1 AND batch_id = $2 AND candidate_id = $3
                       AND kind = 'capture'""", account_id, batch_id, candidate_id):
                return False
            b = _batch(row)
            late = b.held <= 0
            if late:
                if bal.available < 1:
                    log.warning("late result not charged: no credit available",
                                extra={"batch_id": batch_id, "candidate_id": candidate_id})
                    return False
                await c.execute(
                    """INSERT INTO ledger_entries (account_id, kind, amount, batch_id, candidate_id, note)
                       VALUES ($1, 'reserve', 1, $2, $3, 'result arrived after the batch released its credits')""",
                    account_id, batch_id, candidate_id)
            await c.execute(
                """INSERT INTO ledger_entries (account_id, kind, amount, batch_id, candidate_id)
                   VALUES ($1, 'capture', 1, $2, $3)""", account_id, batch_id, candidate_id)
            extra = 1 if late else 0
            updated = await c.fetchrow(
                """UPDATE balances SET reserved = reserved + $2, captured = captured + 1 WHERE account_id = $1
                   RETURNING granted, reserved, captured, released""", account_id, extra)
            brow = await c.fetchrow(
                f"""UPDATE batches SET reserved = reserved + $3, captured = captured + 1
                    WHERE account_id = $1 AND batch_id = $2 RETURNING {_BATCH_COLUMNS}""",
                account_id, batch_id, extra)
            assert updated is not None and brow is not None
            after = _batch(brow)
            if late:
                new = _balance(updated)
                if domain.crosses_low(bal.available, new.available, self._low):
                    await enqueue(c, events.CREDITS_LOW, events.credits_low(account_id, new.available, self._low))
            elif after.held == 0:
                # Every reserved credit is charged (or the last awaited capture of a closed batch came):
                # the batch is settled without waiting for its end.
                await self._settle(c, account_id, batch_id, after)
            return True

    async def release(self, account_id: int, batch_id: str, matched: int | None = None,
                      conn: Conn | None = None) -> BatchCredits:
        """Closes a batch at its end and returns its held credits to the available balance (idempotent:
        a batch closes once, and a replay answers its state).

        `matched` is the number of candidates with a result, when the batch's end reports it: that many
        credits, less the captures already made, stay held for the captures still in flight, and the batch
        settles when the last one arrives. Without it everything not yet captured is released.
        """
        async with self._tx(conn) as c:
            if await self._lock_balance(c, account_id) is None:
                raise errors.not_found("Account not found")
            row = await c.fetchrow(
                f"""SELECT {_BATCH_COLUMNS} FROM batches
                    WHERE account_id = $1 AND batch_id = $2 FOR UPDATE""", account_id, batch_id)
            if row is None:
                return BatchCredits(0, 0, 0, True, True)
            b = _batch(row)
            if b.settled or b.closed:
                return b
            amount = domain.release_amount(b, matched)
            if amount > 0:
                await c.execute(
                    """INSERT INTO ledger_entries (account_id, kind, amount, batch_id)
                       VALUES ($1, 'release', $2, $3)""", account_id, amount, batch_id)
                await c.execute("UPDATE balances SET released = released + $2 WHERE account_id = $1",
                                account_id, amount)
            await c.execute(
                """UPDATE batches SET released = released + $3, closed_at = clock_timestamp(),
                                      expected_captures = $4
                   WHERE account_id = $1 AND batch_id = $2""",
                account_id, batch_id, amount, matched)
            b = BatchCredits(b.reserved, b.captured, b.released + amount, False, True)
            if b.held == 0:
                await self._settle(c, account_id, batch_id, b)
                b = BatchCredits(b.reserved, b.captured, b.released, True, True)
            return b

    async def _settle(self, conn: Conn, account_id: int, batch_id: str, b: BatchCredits) -> None:
        await conn.execute("UPDATE batches SET settled_at = clock_timestamp() WHERE account_id = $1 AND batch_id = $2",
                           account_id, batch_id)
        await enqueue(conn, events.BATCH_SETTLED,
                      events.batch_settled(account_id, batch_id, b.reserved, b.captured, b.released))

    async def balance(self, account_id: int) -> Balance:
        """The cached sums (kept in step with the ledger in every transaction)."""
        async with self._one() as conn:
            row = await conn.fetchrow(
                "SELECT granted, reserved, captured, released FROM balances WHERE account_id = $1", account_id)
        if row is None:
            raise errors.not_found("Account not found")
        return _balance(row)

    async def recompute_balance(self, account_id: int) -> Balance:
        """The balance summed from the ledger itself: the audit of the cached one."""
        async with self._one() as conn:
            rows = await conn.fetch(
                "SELECT kind, sum(amount) AS total FROM ledger_entries WHERE account_id = $1 GROUP BY kind",
                account_id)
        totals = {r["kind"]: int(r["total"]) for r in rows}
        return Balance(totals.get(Kind.GRANT, 0), totals.get(Kind.RESERVE, 0), totals.get(Kind.CAPTURE, 0),
                       totals.get(Kind.RELEASE, 0))

    async def batch(self, account_id: int, batch_id: str) -> BatchCredits | None:
        """A batch's reservation and its fate, if it has one."""
        async with self._one() as conn:
            row = await conn.fetchrow(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE account_id = $1 AND batch_id = $2",
                account_id, batch_id)
        return _batch(row) if row is not None else None

    async def list_entries(self, account_id: int, batch_id: str = "", limit: int = 100) -> list[LedgerEntry]:
        """The newest ledger entries of an account (of one batch when `batch_id` is set)."""
        async with self._one() as conn:
            rows = await conn.fetch(
                """SELECT id, account_id, kind, amount, batch_id, candidate_id, grant_id, price_cents, note,
                          created_at
                   FROM ledger_entries WHERE account_id = $1 AND ($2 = '' OR batch_id = $2)
                   ORDER BY id DESC LIMIT $3""", account_id, batch_id, limit)
        return [LedgerEntry(r["id"], r["account_id"], Kind(r["kind"]), r["amount"], r["batch_id"],
                            r["candidate_id"], r["grant_id"], r["price_cents"], r["note"], r["created_at"])
                for r in rows]
