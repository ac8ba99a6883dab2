"""Authentication, rate limiting and concurrent-request slots of every public call, through billing.

Keys come as `X-API-Key` or `Authorization: Bearer`. Successful authentications are cached for a short,
bounded time (revocation still reaches every gateway within a second or two); the rate-limit check is
never cached because its state is shared by every gateway. If the limiter is unreachable the request
is let through and logged; authentication never fails open.

The same billing call that counts a request takes one of the key's concurrent-request slots (a lease
whose id the gateway chooses). The slot is released when the RPC ends, whichever way it ends: through
the servicer context's done callback, or the RPC's task when only its metadata was passed in. Releases
are sent off the request's path and coalesced; slots of requests still running are renewed; a gateway
that crashes leaves slots that expire by themselves after the lease time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc

from cvmatch.api.billing.v1 import billing_service_pb2 as billing
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.platform import errors

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Caller:
    """The authenticated account behind a request."""

    key_id: str
    account_id: int
    scopes: frozenset[str]
    plan: int
    max_cvs_per_job: int
    rate_headers: Metadata


def api_key_from(metadata: Any) -> str | None:
    """The key from `X-API-Key` (preferred) or `Authorization: Bearer <key>`."""
    api_key = None
    bearer = None
    for key, value in metadata or ():
        if key == "x-api-key" and isinstance(value, str):
            api_key = value.strip()
        elif key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            bearer = value[7:].strip()
    return api_key or bearer or None


def _scope_ok(scopes: frozenset[str], required: str) -> bool:
    if not required or "admin" in scopes or required in scopes:
        return True
    return required == "match:read" and "match:execute" in scopes


# A slot lives this long without renewal: the longest a crashed gateway can keep a key's slots.
LEASE_SECONDS = 30
CACHE_MAX_KEYS = 10_000
# How long a freed slot waits for a rate-limit check to carry it before it is sent on its own.
RELEASE_DELAY_SECONDS = 0.003


def _is_context(obj: Any) -> bool:
    return hasattr(obj, "invocation_metadata") and hasattr(obj, "add_done_callback")


class Authenticator:
    """Resolves keys through billing, with a short cache, counts requests against the limits and holds a
    concurrent-request slot for each admitted request until it ends."""

    def __init__(self, channel: grpc.aio.Channel, cache_seconds: float, *,
                 lease_seconds: int = LEASE_SECONDS) -> None:
        self._stub = billing_grpc.BillingServiceStub(channel)
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, billing.AuthenticateResponse]] = {}
        self._lease_seconds = lease_seconds
        self._renew_after = lease_seconds / 3
        # Slots held by requests running in this process: lease id -> when it was taken or last renewed.
        self._held: dict[str, float] = {}
        self._to_release: list[str] = []
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def _authenticate(self, key: str) -> billing.AuthenticateResponse:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            resp: billing.AuthenticateResponse = await self._stub.Authenticate(
                billing.AuthenticateRequest(api_key=key), timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                self._cache.pop(key, None)
                raise errors.unauthenticated() from None
            raise errors.unavailable("Authentication is temporarily unavailable; retry later") from None
        if len(self._cache) > CACHE_MAX_KEYS:
            self._cache.clear()
        self._cache[key] = (now, resp)
        return resp

    async def authorize(self, request: Any, scope: str = "") -> Caller:
        """Authenticates, checks the scope, the rate limits and takes a concurrent-request slot; raises
        the public error otherwise.

        `request` is the RPC's servicer context (preferred: the slot is released by its done callback)
        or its invocation metadata (the slot is then released when the RPC's task ends: grpc.aio runs
        each RPC in a task of its own).
        """
        started = time.perf_counter()
        metadata = request.invocation_metadata() if _is_context(request) else request
        key = api_key_from(metadata)
        if not key:
            raise errors.unauthenticated()
        auth = await self._authenticate(key)
        scopes = frozenset(auth.scopes)
        headers: Metadata = ()
        lease = str(uuid.uuid4())
        # Slots freed since the last call ride along and are freed before this check counts.
        release, self._to_release = self._to_release, []
        try:
            rl: billing.CheckRateLimitResponse = await self._stub.CheckRateLimit(
                billing.CheckRateLimitRequest(key_id=auth.key_id, account_id=auth.account.account_id, cost=1,
                                              lease_id=lease, lease_seconds=self._lease_seconds,
                                              release_lease_ids=release),
                timeout=2.0)
        except grpc.aio.AioRpcError as exc:
            self._to_release.extend(release)  # freeing is idempotent: send them again
            self._wake_flusher()
            log.warning("rate limiter unreachable; request let through", extra={"code": exc.code().name})
        else:
            headers = (("x-ratelimit-limit", str(rl.limit)), ("x-ratelimit-remaining", str(rl.remaining)),
                       ("x-ratelimit-reset", str(rl.reset_unix)))
            if not rl.allowed:
                raise self._refusal(rl, headers)
            self._hold(lease, request)
        # Server-Timing lets an operator (and tools/bench_billing.py) see what authentication and the
        # limits cost this request, through Envoy, without guessing from end-to-end latency.
        headers += (("server-timing", f"auth;dur={(time.perf_counter() - started) * 1000:.3f}"),)
        if not _scope_ok(scopes, scope):
            err = errors.permission_denied(f"This API key lacks the '{scope}' permission")
            err.headers = headers
            raise err
        return Caller(auth.key_id, auth.account.account_id, scopes, auth.account.plan,
                      auth.account.limits.max_cvs_per_job, headers)

    @staticmethod
    def _refusal(rl: billing.CheckRateLimitResponse, headers: Metadata) -> errors.DomainError:
        if rl.refused_by == billing.RATE_LIMIT_KIND_CONCURRENCY:
            message = (f"Too many concurrent requests: at most {rl.concurrent_limit} at once for this key; "
                       f"retry in {rl.retry_after_seconds} s")
            details = {"limit": str(rl.concurrent_limit), "limit_type": "concurrent_requests"}
        else:
            window = {billing.RATE_LIMIT_KIND_PER_DAY: "day", billing.RATE_LIMIT_KIND_BURST: "second"}.get(
                rl.refused_by, "minute")
            message = (f"Rate limit exceeded: {rl.limit} requests per {window}; "
                       f"retry in {rl.retry_after_seconds} s")
            details = {"limit": str(rl.limit), "reset": str(rl.reset_unix),
                       "limit_type": f"requests_per_{window}"}
        err = errors.rate_limited(message, rl.retry_after_seconds)
        err.details = details
        err.headers = headers
        return err

    # --- concurrent-request slots ----------------------------------------------------------------------

    def _hold(self, lease: str, request: Any) -> None:
        """Remembers the slot and arranges its release when the RPC ends."""
        self._start()
        self._held[lease] = time.monotonic()

        def done(_: Any) -> None:
            self._release(lease)

        if _is_context(request):
            request.add_done_callback(done)
            return
        task = asyncio.current_task()
        if task is None:  # not inside an RPC's task: nothing marks its end, so give the slot back now
            self._release(lease)
        else:
            task.add_done_callback(done)

    def _release(self, lease: str) -> None:
        if self._held.pop(lease, None) is None:
            return
        self._to_release.append(lease)
        self._wake_flusher()

    def _wake_flusher(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _start(self) -> None:
        # Started on first use, on the server's loop (the Authenticator is built before it runs RPCs).
        if self._tasks or self._closed:
            return
        self._wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._release_loop(), name="lease-release"),
                       asyncio.create_task(self._renew_loop(), name="lease-renewal")]

    async def _release_loop(self) -> None:
        """Sends released slots that no rate-limit check took along within a few milliseconds (a busy
        gateway frees its slots with its next checks; an idle one with one call for all of them)."""
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await asyncio.sleep(RELEASE_DELAY_SECONDS)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._to_release:
            batch, self._to_release = self._to_release[:1000], self._to_release[1000:]
            try:
                await self._stub.ReleaseLeases(billing.ReleaseLeasesRequest(lease_ids=batch), timeout=5.0)
            except Exception as exc:  # an unreachable billing or a closed channel: never stop the loop
                # The slots expire by themselves; retrying here could only pile up work.
                log.warning("releasing concurrent-request slots failed; they will expire",
                            extra={"count": len(batch), "error": type(exc).__name__})

    async def _renew_loop(self) -> None:
        """Keeps the slots of long requests (uploads) alive; only a crashed gateway's slots expire."""
        while True:
            await asyncio.sleep(self._renew_after / 2)
            now = time.monotonic()
            due = [lease for lease, at in self._held.items() if now - at >= self._renew_after]
            if not due:
                continue
            try:
                await self._stub.RenewLeases(
                    billing.RenewLeasesRequest(lease_ids=due, lease_seconds=self._lease_seconds), timeout=5.0)
            except Exception as exc:  # the slots are retried on the next round, before they expire
                log.warning("renewing concurrent-request slots failed", extra={"error": type(exc).__name__})
                continue
            for lease in due:
                if lease in self._held:
                    self._held[lease] = now

    async def close(self) -> None:
        """Stops the background loops and releases what is still queued (on shutdown, after the server
        stopped taking requests)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._to_release.extend(self._held)
        self._held.clear()
        await self._flush()
