"""The only SQL of the notifier service: endpoints, their secrets, deliveries and attempts.

Deliveries are a queue in Postgres. A worker claims a due one with ``FOR UPDATE SKIP LOCKED`` and
stamps a lease (owner + expiry) in the same statement, sends outside any transaction, then records
the attempt and the next state only if it still holds the lease. A worker that dies mid-attempt leaves
its lease to expire, and the delivery is claimed again: at-least-once, with the same webhook-id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TypeAlias

import asyncpg
import grpc
from asyncpg.pool import PoolConnectionProxy

from cvmatch.notifier import domain, events
from cvmatch.notifier.domain import Attempt, Delivery, DueDelivery, Endpoint, NewDelivery, SecretBox
from cvmatch.notifier.webhooks import AttemptResult, Decision, Outcome, WebhookEvent
from cvmatch.platform import errors
from cvmatch.platform.outbox import enqueue

log = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

_ENDPOINT_COLUMNS = """endpoint_id, account_id, url, events, description, enabled, disabled_reason, batch_id,
                       created_at, updated_at"""
_DELIVERY_COLUMNS = """delivery_id, endpoint_id, event_id, event_type, message_id, status, attempts,
                       next_attempt_at, created_at"""
# Rotated-out secrets are kept this long after they stop signing, then swept.
_SECRET_GRACE = dt.timedelta(days=1)
# pg_advisory_xact_lock namespace for rotations of an account's submission secret.
_SUBMISSION_LOCK = 0x6E6F7469


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        raise errors.invalid_input(f"Invalid value: {exc.constraint_name}") from None
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
        raise errors.unavailable("The notifier database is unavailable; retry later") from None


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(
        endpoint_id=row["endpoint_id"], account_id=row["account_id"], url=row["url"],
        events=tuple(row["events"]), description=row["description"], enabled=row["enabled"],
        disabled_reason=row["disabled_reason"], batch_id=row["batch_id"], created_at=row["created_at"],
        updated_at=row["updated_at"])


def _delivery(row: asyncpg.Record, attempts: tuple[Attempt, ...] = ()) -> Delivery:
    return Delivery(
        delivery_id=row["delivery_id"], endpoint_id=row["endpoint_id"], event_id=row["event_id"],
        event_type=row["event_type"], message_id=row["message_id"], status=row["status"],
        attempts=row["attempts"], next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
        created_at=row["created_at"], attempt_log=attempts)


def _endpoint_not_found(endpoint_id: uuid.UUID) -> errors.DomainError:
    return errors.not_found(f"No webhook with id '{endpoint_id}'")


class Repository:
    """Endpoints, secrets, deliveries and attempts in the `notifier` schema."""

    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self._pool = pool
        self._box = box

    @contextlib.asynccontextmanager
    async def _tx(self, conn: Conn | None = None) -> AsyncIterator[Conn]:
        """The caller's transaction when it passes one (event handlers), else a new one."""
        with _mapped():
            if conn is not None:
                yield conn
                return
            async with self._pool.acquire() as c, c.transaction():
                yield c

    # --- endpoints -------------------------------------------------------------------------------

    async def create_endpoint(self, account_id: int, url: str, event_types: tuple[str, ...], description: str,
                              secret: str) -> Endpoint:
        """Stores a new endpoint with its (encrypted) secret."""
        endpoint_id = uuid.uuid4()
        async with self._tx() as conn:
            row = await conn.fetchrow(
                f"""INSERT INTO endpoints (endpoint_id, account_id, url, events, description)
                    VALUES ($1, $2, $3, $4, $5) RETURNING {_ENDPOINT_COLUMNS}""",
                endpoint_id, account_id, url, list(event_types), description)
            await conn.execute("INSERT INTO endpoint_secrets (endpoint_id, ciphertext) VALUES ($1, $2)",
                               endpoint_id, self._box.seal(endpoint_id, secret))
        assert row is not None
        return _endpoint(row)

    async def ensure_batch_endpoint(self, conn: Conn, account_id: int, batch_id: uuid.UUID, url: str,
                                    secret: str) -> bool:
        """The one-off endpoint of a batch's webhook_url; True when this call created it.

        It signs with the account's submission secret (``secret`` becomes that secret when the account
        has none yet), so the account can verify it: see ``rotate_submission_secret``.
        """
        endpoint_id = uuid.uuid4()
        created = await conn.fetchval(
            """INSERT INTO endpoints (endpoint_id, account_id, url, events, description, batch_id)
               VALUES ($1, $2, $3, $4, 'batch webhook_url', $5)
               ON CONFLICT (batch_id) WHERE batch_id IS NOT NULL DO NOTHING RETURNING true""",
            endpoint_id, account_id, url, list(domain.BATCH_ENDPOINT_EVENTS), batch_id)
        if created:
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _SUBMISSION_LOCK, account_id)
            await conn.execute(
                """INSERT INTO submission_secrets (account_id, ciphertext) VALUES ($1, $2)
                   ON CONFLICT (account_id) WHERE expires_at IS NULL DO NOTHING""",
                account_id, self._box.seal(domain.submission_secret_binding(account_id), secret))
        return bool(created)

    async def rotate_submission_secret(self, account_id: int, secret: str, overlap: dt.timedelta) -> None:
        """Makes ``secret`` the account's submission secret; the previous ones keep signing for ``overlap``."""
        async with self._tx() as conn:
            # Two rotations at once would both insert a current secret: serialise them per account.
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _SUBMISSION_LOCK, account_id)
            await conn.execute(
                """UPDATE submission_secrets SET expires_at = LEAST(COALESCE(expires_at, 'infinity'),
                                                                    clock_timestamp() + $2::interval)
                   WHERE account_id = $1 AND (expires_at IS NULL OR expires_at > clock_timestamp())""",
                account_id, overlap)
            await conn.execute(
                """DELETE FROM submission_secrets
                   WHERE account_id = $1 AND expires_at < clock_timestamp() - $2::interval""",
                account_id, _SECRET_GRACE)
            await conn.execute("INSERT INTO submission_secrets (account_id, ciphertext) VALUES ($1, $2)",
                               account_id, self._box.seal(domain.submission_secret_binding(account_id), secret))

    async def list_endpoints(self, account_id: int) -> list[Endpoint]:
        """The account's endpoints (not the one-off endpoints of batches), oldest first."""
        with _mapped():
            rows = await self._pool.fetch(
                f"""SELECT {_ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = $1 AND batch_id IS NULL
                    ORDER BY created_at, endpoint_id""", account_id)
        return [_endpoint(r) for r in rows]

    async def get_endpoint(self, account_id: int, endpoint_id: uuid.UUID) -> Endpoint:
        """One endpoint of the account; NOT_FOUND for another account's."""
        with _mapped():
            row = await self._pool.fetchrow(
                f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints WHERE account_id = $1 AND endpoint_id = $2",
                account_id, endpoint_id)
        if row is None:
            raise _endpoint_not_found(endpoint_id)
        return _endpoint(row)

    async def update_endpoint(self, account_id: int, endpoint_id: uuid.UUID, *, url: str | None,
                              event_types: tuple[str, ...] | None, enabled: bool | None,
                              description: str | None) -> Endpoint:
        """Changes the given fields; enabling clears the reason it was disabled for."""
        async with self._tx() as conn:
            row = await conn.fetchrow(
                f"""UPDATE endpoints SET
                        url = COALESCE($3, url),
                        events = COALESCE($4, events),
                        enabled = COALESCE($5, enabled),
                        disabled_reason = CASE WHEN $5 IS TRUE THEN NULL
                                               WHEN $5 IS FALSE THEN 'disabled by the account'
                                               ELSE disabled_reason END,
                        description = COALESCE($6, description),
                        updated_at = clock_timestamp()
                    WHERE account_id = $1 AND endpoint_id = $2 RETURNING {_ENDPOINT_COLUMNS}""",
                account_id, endpoint_id, url, None if event_types is None else list(event_types), enabled,
                description)
        if row is None:
            raise _endpoint_not_found(endpoint_id)
        return _endpoint(row)

    async def delete_endpoint(self, account_id: int, endpoint_id: uuid.UUID) -> None:
        """Deletes the endpoint with its secrets and delivery log."""
        async with self._tx() as conn:
            deleted = await conn.fetchval(
                "DELETE FROM endpoints WHERE account_id = $1 AND endpoint_id = $2 RETURNING true",
                account_id, endpoint_id)
        if not deleted:
            raise _endpoint_not_found(endpoint_id)

    async def rotate_secret(self, account_id: int, endpoint_id: uuid.UUID, secret: str,
                            overlap: dt.timedelta) -> None:
        """Makes ``secret`` current; the previous ones keep signing for ``overlap``."""
        async with self._tx() as conn:
            owner = await conn.fetchval(
                "SELECT account_id FROM endpoints WHERE endpoint_id = $1 FOR UPDATE", endpoint_id)
            if owner != account_id:
                raise _endpoint_not_found(endpoint_id)
            await conn.execute(
                """UPDATE endpoint_secrets SET expires_at = LEAST(COALESCE(expires_at, 'infinity'),
                                                                  clock_timestamp() + $2::interval)
                   WHERE endpoint_id = $1""", endpoint_id, overlap)
            await conn.execute(
                "DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND expires_at < clock_timestamp() - $2::interval",
                endpoint_id, _SECRET_GRACE)
            await conn.execute("INSERT INTO endpoint_secrets (endpoint_id, ciphertext) VALUES ($1, $2)",
                               endpoint_id, self._box.seal(endpoint_id, secret))

    async def _secrets(self, conn: Conn,
                       endpoint_ids: list[uuid.UUID]) -> tuple[dict[uuid.UUID, list[str]], dict[uuid.UUID, str]]:
        """The secrets that sign now per endpoint (the current first), and the endpoints that cannot sign
        with the reason why.

        A batch endpoint signs with its account's submission secrets (then any secret of its own, from
        before submission secrets existed). An endpoint whose current secret does not decrypt (the
        operator changed NOTIFIER_SECRETS_KEY, a damaged row) cannot sign: it is reported, not raised,
        so the other endpoints' deliveries go on. An older, rotated-out secret that does not decrypt is
        only left out.
        """
        rows = await conn.fetch(
            """SELECT e.endpoint_id, s.account_id AS bound_account, s.ciphertext, 0 AS source,
                      s.expires_at IS NULL AS current, s.created_at, s.secret_id
               FROM endpoints e JOIN submission_secrets s ON s.account_id = e.account_id
               WHERE e.endpoint_id = ANY($1::uuid[]) AND e.batch_id IS NOT NULL
                 AND (s.expires_at IS NULL OR s.expires_at > clock_timestamp())
               UNION ALL
               SELECT endpoint_id, NULL, ciphertext, 1, expires_at IS NULL, created_at, secret_id
               FROM endpoint_secrets
               WHERE endpoint_id = ANY($1::uuid[]) AND (expires_at IS NULL OR expires_at > clock_timestamp())
               ORDER BY endpoint_id, source, current DESC, created_at DESC, secret_id DESC""",
            endpoint_ids)
        out: dict[uuid.UUID, list[str]] = {}
        broken: dict[uuid.UUID, str] = {}
        for r in rows:
            endpoint = r["endpoint_id"]
            if endpoint in broken:
                continue
            binding = (endpoint if r["bound_account"] is None
                       else domain.submission_secret_binding(r["bound_account"]))
            try:
                secret = self._box.open(binding, bytes(r["ciphertext"]))
            except ValueError:
                if endpoint not in out:  # the current secret: nothing verifiable can be signed
                    broken[endpoint] = domain.UNREADABLE_SECRET_REASON
                else:
                    log.warning("a rotated-out webhook secret does not decrypt; left out",
                                extra={"endpoint_id": str(endpoint)})
                continue
            out.setdefault(endpoint, []).append(secret)
        for endpoint in endpoint_ids:
            if endpoint not in out and endpoint not in broken:
                broken[endpoint] = domain.NO_SECRET_REASON
        return out, broken

    # --- creating deliveries ---------------------------------------------------------------------

    async def fan_out(self, conn: Conn, new: NewDelivery) -> int:
        """A delivery per enabled endpoint that wants the event; a repeated event adds none."""
        event_type = new.event.type
        rows = await conn.fetch(
            """SELECT endpoint_id FROM endpoints
               WHERE account_id = $1 AND enabled AND ($2 = ANY(events) OR '*' = ANY(events))
                 AND (batch_id IS NULL OR batch_id = $3)""",
            new.account_id, event_type, new.batch_id)
        created = 0
        for row in rows:
            inserted = await conn.fetchval(
                """INSERT INTO deliveries (delivery_id, endpoint_id, account_id, event_id, event_type, message_id, body)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (endpoint_id, event_id) DO NOTHING
                   RETURNING true""",
                uuid.uuid4(), row["endpoint_id"], new.account_id, new.event_id, event_type, new.event.id,
                new.event.body)
            created += bool(inserted)
        return created

    async def create_test_delivery(self, account_id: int, endpoint_id: uuid.UUID, event: WebhookEvent) -> Delivery:
        """A ping for one endpoint, queued like any delivery (so it is retried and logged too)."""
        async with self._tx() as conn:
            found = await conn.fetchrow("SELECT account_id, enabled FROM endpoints WHERE endpoint_id = $1",
                                        endpoint_id)
            if found is None or found["account_id"] != account_id:
                raise _endpoint_not_found(endpoint_id)
            if not found["enabled"]:
                # Queued behind a disabled endpoint it would never be sent: say so now.
                raise errors.DomainError("The webhook is disabled; enable it before sending a test event",
                                         "WEBHOOK_DISABLED", grpc.StatusCode.FAILED_PRECONDITION, 409)
            row = await conn.fetchrow(
                f"""INSERT INTO deliveries
                        (delivery_id, endpoint_id, account_id, event_id, event_type, message_id, body)
                    VALUES ($1, $2, $3, $4, $5, $4, $6) RETURNING {_DELIVERY_COLUMNS}""",
                uuid.uuid4(), endpoint_id, account_id, event.id, event.type, event.body)
        assert row is not None
        return _delivery(row)

    # --- the delivery queue ----------------------------------------------------------------------

    async def claim(self, owner: str, lease: dt.timedelta, limit: int, in_flight: Mapping[uuid.UUID, int],
                    endpoint_limit: int) -> list[DueDelivery]:
        """Leases up to ``limit`` of the most overdue deliveries of enabled endpoints.

        ``in_flight`` counts this process's running deliveries per endpoint: an endpoint already at
        ``endpoint_limit`` gets none, so one slow receiver cannot take every worker. Such endpoints are
        left out inside the query: were they only skipped afterwards, a slow endpoint with more overdue
        deliveries than the query reads would fill every candidate row and starve all the others.
        Candidate rows are locked with SKIP LOCKED (other processes skip them), the chosen ones leased,
        the rest unlocked again at commit. An endpoint that cannot sign (its secret does not decrypt)
        is disabled with the reason and its claimed deliveries fail with it; the others go on.
        """
        full = [endpoint for endpoint, running in in_flight.items() if running >= endpoint_limit]
        async with self._tx() as conn:
            rows = await conn.fetch(
                """SELECT q.delivery_id, q.endpoint_id FROM deliveries q JOIN endpoints e USING (endpoint_id)
                   WHERE q.status = 'pending' AND q.next_attempt_at <= clock_timestamp()
                     AND (q.lease_until IS NULL OR q.lease_until < clock_timestamp()) AND e.enabled
                     AND q.endpoint_id <> ALL($2::uuid[])
                   ORDER BY q.next_attempt_at LIMIT $1
                   FOR UPDATE OF q SKIP LOCKED""", limit * 4, full)
            taken: Counter[uuid.UUID] = Counter()
            chosen: list[tuple[uuid.UUID, uuid.UUID]] = []
            for r in rows:
                endpoint = r["endpoint_id"]
                if in_flight.get(endpoint, 0) + taken[endpoint] < endpoint_limit:
                    taken[endpoint] += 1
                    chosen.append((r["delivery_id"], endpoint))
                    if len(chosen) == limit:
                        break
            if not chosen:
                return []
            secrets, broken = await self._secrets(conn, list(taken))
            if broken:
                await self._fail_unsignable(conn, [(d, e) for d, e in chosen if e in broken], broken)
            leased = await conn.fetch(
                """UPDATE deliveries d SET lease_owner = $1, lease_until = clock_timestamp() + $2::interval
                   FROM endpoints e
                   WHERE d.delivery_id = ANY($3::uuid[]) AND e.endpoint_id = d.endpoint_id
                   RETURNING d.delivery_id, d.endpoint_id, d.account_id, d.event_type, d.message_id, d.body,
                             d.attempts, d.round_attempts, e.url""",
                owner, lease, [d for d, e in chosen if e not in broken])
        return [DueDelivery(
            delivery_id=row["delivery_id"], endpoint_id=row["endpoint_id"], account_id=row["account_id"],
            event_type=row["event_type"], message_id=row["message_id"], body=bytes(row["body"]), url=row["url"],
            secrets=secrets[row["endpoint_id"]], attempts=row["attempts"],
            round_attempts=row["round_attempts"]) for row in leased]

    async def _fail_unsignable(self, conn: Conn, chosen: list[tuple[uuid.UUID, uuid.UUID]],
                               broken: Mapping[uuid.UUID, str]) -> None:
        """Disables endpoints that cannot sign and fails their claimed deliveries with the reason.

        Their other pending deliveries wait, as for any disabled endpoint, until the account rotates the
        secret and enables the webhook again; the failed ones can be replayed then.
        """
        for endpoint, reason in broken.items():
            log.error("webhook endpoint cannot sign; disabled", extra={"endpoint_id": str(endpoint),
                                                                         "reason": reason})
            await conn.execute(
                """UPDATE endpoints SET enabled = false, disabled_reason = $2, updated_at = clock_timestamp()
                   WHERE endpoint_id = $1""", endpoint, reason)
        for delivery_id, endpoint in chosen:
            row = await conn.fetchrow(
                """UPDATE deliveries SET status = 'failed', attempts = attempts + 1,
                       round_attempts = round_attempts + 1, last_status_code = NULL, last_error = $2,
                       updated_at = clock_timestamp(), completed_at = clock_timestamp()
                   WHERE delivery_id = $1 RETURNING attempts, account_id, event_type""",
                delivery_id, broken[endpoint])
            assert row is not None  # locked by this transaction's claim
            await conn.execute(
                """INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error, error_code)
                   VALUES ($1, $2, NULL, 0, $3, 'WEBHOOK_SECRET_UNUSABLE')""",
                delivery_id, row["attempts"], broken[endpoint])
            await enqueue(conn, events.DELIVERY_FAILED, events.delivery_failed(
                str(delivery_id), str(endpoint), row["account_id"], row["event_type"], row["attempts"]))

    async def record_attempt(self, due: DueDelivery, owner: str, result: AttemptResult, decision: Decision) -> bool:
        """Logs the attempt and moves the delivery on; False when the lease was lost (nothing written)."""
        status, delay = {
            Outcome.DELIVERED: ("succeeded", None),
            Outcome.RETRY: ("pending", decision.delay_s),
            Outcome.FAILED: ("failed", None),
            Outcome.ENDPOINT_GONE: ("failed", None),
        }[decision.outcome]
        error = result.error if result.error is None else result.error[:500]
        async with self._tx() as conn:
            attempt = await conn.fetchval(
                """UPDATE deliveries SET
                       status = $3, attempts = attempts + 1, round_attempts = round_attempts + 1,
                       next_attempt_at = CASE WHEN $4::float8 IS NULL THEN next_attempt_at
                                              ELSE clock_timestamp() + make_interval(secs => $4::float8) END,
                       lease_owner = NULL, lease_until = NULL, last_status_code = $5, last_error = $6,
                       updated_at = clock_timestamp(),
                       completed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE clock_timestamp() END
                   WHERE delivery_id = $1 AND lease_owner = $2 RETURNING attempts""",
                due.delivery_id, owner, status, delay, result.status_code, error)
            if attempt is None:
                log.warning("delivery lease lost; attempt not recorded", extra={"delivery_id": str(due.delivery_id)})
                return False
            await conn.execute(
                """INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error, error_code)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                due.delivery_id, attempt, result.status_code, result.latency_ms, error, result.error_code)
            if decision.outcome is Outcome.ENDPOINT_GONE:
                await conn.execute(
                    """UPDATE endpoints SET enabled = false, updated_at = clock_timestamp(),
                                            disabled_reason = 'the receiver answered 410 Gone'
                       WHERE endpoint_id = $1""", due.endpoint_id)
            if status == "failed":
                await enqueue(conn, events.DELIVERY_FAILED, events.delivery_failed(
                    str(due.delivery_id), str(due.endpoint_id), due.account_id, due.event_type, attempt))
        return True

    async def purge_finished(self, older_than: dt.timedelta) -> int:
        """Deletes succeeded and failed deliveries (with their attempts) finished before ``older_than``."""
        with _mapped():
            result = await self._pool.execute(
                """DELETE FROM deliveries WHERE status <> 'pending'
                   AND completed_at < clock_timestamp() - $1::interval""", older_than)
        return int(result.split()[-1])

    # --- the delivery log ------------------------------------------------------------------------

    async def list_deliveries(self, account_id: int, endpoint_id: uuid.UUID, status: str | None,
                              limit: int) -> list[Delivery]:
        """An endpoint's deliveries, newest first, each with its attempt log."""
        with _mapped():
            async with self._pool.acquire() as conn:
                owner = await conn.fetchval("SELECT account_id FROM endpoints WHERE endpoint_id = $1", endpoint_id)
                if owner != account_id:
                    raise _endpoint_not_found(endpoint_id)
                rows = await conn.fetch(
                    f"""SELECT {_DELIVERY_COLUMNS} FROM deliveries
                        WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
                        ORDER BY created_at DESC, delivery_id LIMIT $3""", endpoint_id, status, limit)
                attempts = await conn.fetch(
                    """SELECT delivery_id, attempt, status_code, latency_ms, error, attempted_at
                       FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt""",
                    [r["delivery_id"] for r in rows])
        log_by: dict[uuid.UUID, list[Attempt]] = {}
        for a in attempts:
            log_by.setdefault(a["delivery_id"], []).append(
                Attempt(a["attempt"], a["status_code"], a["latency_ms"], a["error"], a["attempted_at"]))
        return [_delivery(r, tuple(log_by.get(r["delivery_id"], ()))) for r in rows]

    async def replay(self, account_id: int, endpoint_id: uuid.UUID, delivery_id: uuid.UUID | None) -> int:
        """Queues failed deliveries again with a fresh schedule; returns how many."""
        async with self._tx() as conn:
            owner = await conn.fetchval("SELECT account_id FROM endpoints WHERE endpoint_id = $1", endpoint_id)
            if owner != account_id:
                raise _endpoint_not_found(endpoint_id)
            if delivery_id is not None:
                status = await conn.fetchval(
                    "SELECT status FROM deliveries WHERE endpoint_id = $1 AND delivery_id = $2",
                    endpoint_id, delivery_id)
                if status is None:
                    raise errors.not_found(f"No delivery with id '{delivery_id}'")
                if status != "failed":
                    raise errors.DomainError(
                        f"Only failed deliveries can be replayed; this one is {status}", "DELIVERY_NOT_FAILED",
                        grpc.StatusCode.FAILED_PRECONDITION, 409)
            count = await conn.fetchval(
                """WITH replayed AS (
                       UPDATE deliveries SET status = 'pending', round_attempts = 0,
                              next_attempt_at = clock_timestamp(), completed_at = NULL,
                              updated_at = clock_timestamp()
                       WHERE endpoint_id = $1 AND status = 'failed' AND ($2::uuid IS NULL OR delivery_id = $2)
                       RETURNING 1)
                   SELECT count(*) FROM replayed""", endpoint_id, delivery_id)
        return int(count or 0)
