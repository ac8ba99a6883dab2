"""Authentication, rate limiting and concurrent-request slots of every public call, through billing.

Keys come as `X-API-Key` or `Authorization: Bearer`. Successful authentications are cached for a short,
bounded time and refreshed ahead of expiry while a key is in use (revocation still reaches every gateway
within a second or two); authentication never fails open.

The limits' state is billing's, shared by every gateway, but asking billing on every request made the
limiter the most expensive part of a cheap call. So the gateway takes a key's allowance in blocks: billing
counts a block of requests against the key's windows when it grants it (`LeaseQuota`), the gateway admits
requests from it locally, asks for the next block before this one runs out, and gives back what it has not
spent within a second. Every admitted request was granted by billing, so two gateways together never admit
more than the limit; a block is small beside the limit (a twentieth of the per-minute limit at most), and
its size follows this gateway's demand for the key, so an idle gateway holds nothing.

Concurrent-request slots work the same way: a slot granted by billing is held while its request runs and
kept a moment afterwards for the key's next request; a gateway that crashes leaves slots that expire by
themselves after the lease time, and slots of requests still running are renewed. If the limiter is
unreachable the request is let through and logged.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import grpc

from cvmatch.api.billing.v1 import billing_service_pb2 as billing
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.platform import errors
from cvmatch.platform.interceptors import error_headers_var

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
# A block of requests is spent within this time or the rest goes back: it bounds how much later than its
# grant (when billing counted it) a request can be admitted.
BLOCK_SECONDS = 1.0
# The largest block, also capped at a twentieth of the key's per-minute limit, so one gateway never sits
# on much of a key's minute while another is refused.
MAX_BLOCK = 100
BLOCK_SHARE_OF_MINUTE = 20
# A slot freed by a request waits this long for the key's next request before it goes back to billing;
# at most a tenth of the key's concurrency limit waits at a time (none under ten: with a limit of five, a
# slot idle here would refuse a request at another gateway). Slots are never asked for ahead of need.
SLOT_LINGER_SECONDS = 0.2
SPARE_SHARE_OF_CONCURRENCY = 10
# How often the housekeeping loop gives back what waited long enough.
HOUSEKEEPING_SECONDS = 0.05
# How long a freed slot waits for a call to billing to carry it before it is sent on its own.
RELEASE_DELAY_SECONDS = 0.003
# Billing takes at most this many lease ids (or settlements) per call.
MAX_IDS_PER_CALL = 1000
# Billing answers in milliseconds; past this the gateway stops waiting (and lets the request through).
BILLING_TIMEOUT_SECONDS = 2.0
# What a call to billing may fail with and still let the request through: billing is down or slow.
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _is_context(obj: Any) -> bool:
    return hasattr(obj, "invocation_metadata") and hasattr(obj, "add_done_callback")


@dataclass(eq=False)
class _Block:
    """Requests granted by billing and not yet admitted here."""

    grant_id: int
    granted: int
    # The places in the key's countdown (`X-RateLimit-Remaining`) this block still holds, ascending: a
    # block of n granted when the key had r left after it covers r + n - 1 down to r.
    places: list[int]
    limit: int
    reset_unix: int
    expires: float

    @property
    def left(self) -> int:
        return len(self.places)


class _KeyQuota:
    """What this gateway holds of one key's allowance, and how fast it spends it."""

    def __init__(self, now: float) -> None:
        self.blocks: list[_Block] = []
        self.cap = 1
        # Requests admitted here per second, smoothed: a block holds about half a second of them.
        self.rate = 0.0
        self.admitted = 0
        self.measured_at = now
        self.measured = 0
        self.refill: asyncio.Task[None] | None = None
        # Slots freed by ended requests, waiting for the key's next one: lease id -> when freed.
        self.free: dict[str, float] = {}
        self.spare = 0
        self.in_use = 0
        # What billing said the key had left after its last grant: no block is asked for ahead of need
        # near the end of a window, where one idle at this gateway would refuse a request at another.
        self.last_remaining = 0
        self.last_used = now

    def take(self, now: float) -> tuple[_Block, int] | None:
        """One request from the oldest live block, and the key's remaining allowance it leaves."""
        for block in self.blocks:
            if block.places and block.expires > now:
                self.admitted += 1
                return block, block.places.pop()
        return None

    def untake(self, block: _Block, place: int) -> None:
        """Puts back a request taken for a request that was then refused."""
        bisect.insort(block.places, place)
        self.admitted -= 1
        if all(b is not block for b in self.blocks):  # housekeeping dropped it as spent meanwhile
            self.blocks.append(block)
            self.blocks.sort(key=lambda b: b.grant_id)

    def available(self, now: float) -> int:
        return sum(b.left for b in self.blocks if b.expires > now)

    def size(self, now: float) -> int:
        """Requests to ask for: half a second of this gateway's demand for the key, within the cap."""
        elapsed = now - self.measured_at
        if elapsed >= 0.02:
            current = (self.admitted - self.measured) / elapsed
            # Smoothed, but quick to follow a rise: a spike must not make every request wait for billing.
            self.rate = current if current > self.rate else (self.rate + current) / 2
            self.measured_at, self.measured = now, self.admitted
        return max(1, min(self.cap, math.ceil(self.rate * BLOCK_SECONDS / 2)))

    def add(self, resp: billing.LeaseQuotaResponse, now: float) -> None:
        self.cap = max(1, min(MAX_BLOCK, resp.limit // BLOCK_SHARE_OF_MINUTE))
        self.last_remaining = resp.remaining
        if resp.concurrent_limit:
            self.spare = resp.concurrent_limit // SPARE_SHARE_OF_CONCURRENCY
        if resp.granted > 0:
            self.blocks.append(_Block(resp.grant_id, resp.granted,
                                      list(range(resp.remaining, resp.remaining + resp.granted)),
                                      resp.limit, resp.reset_unix, now + BLOCK_SECONDS))
            # Answers to calls in flight at once may arrive out of order; grants are numbered in order.
            self.blocks.sort(key=lambda b: b.grant_id)

    def expired(self, now: float) -> list[billing.QuotaReturn]:
        """Drops spent and expired blocks; expired ones with requests unspent are to be settled."""
        back = [billing.QuotaReturn(grant_id=b.grant_id, spent=b.granted - b.left)
                for b in self.blocks if b.left > 0 and b.expires <= now]
        self.blocks = [b for b in self.blocks if b.left > 0 and b.expires > now]
        return back

    def idle(self, now: float) -> bool:
        return (not self.blocks and not self.free and not self.in_use and self.refill is None
                and now - self.last_used > 10 * BLOCK_SECONDS)


def _headers(limit: int, remaining: int, reset_unix: int) -> Metadata:
    return (("x-ratelimit-limit", str(limit)), ("x-ratelimit-remaining", str(remaining)),
            ("x-ratelimit-reset", str(reset_unix)))


class Authenticator:
    """Resolves keys through billing, with a short cache, admits requests from blocks of the key's
    allowance granted by billing, and holds a concurrent-request slot for each admitted request until it
    ends."""

    def __init__(self, channel: grpc.aio.Channel, cache_seconds: float, *,
                 lease_seconds: int = LEASE_SECONDS) -> None:
        self._stub = billing_grpc.BillingServiceStub(channel)
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, billing.AuthenticateResponse]] = {}
        self._refreshing: set[str] = set()
        self._lease_seconds = lease_seconds
        self._renew_after = lease_seconds / 3
        self._quotas: dict[str, _KeyQuota] = {}
        # Slots held by this process (running requests' and lingering ones): lease id -> when taken or
        # last renewed.
        self._held: dict[str, float] = {}
        self._to_release: list[str] = []
        self._returns: dict[str, list[billing.QuotaReturn]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._closed = False

    # --- keys --------------------------------------------------------------------------------------------

    async def _authenticate(self, key: str) -> billing.AuthenticateResponse:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            # A key in use is refreshed in the background before it expires, so its requests never wait
            # for billing; a revoked key is still refused within the cache time.
            if now - hit[0] >= self._ttl / 2 and key not in self._refreshing:
                self._refreshing.add(key)
                self._spawn(self._refresh(key))
            return hit[1]
        return await self._lookup(key)

    async def _lookup(self, key: str) -> billing.AuthenticateResponse:
        started = time.monotonic()
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
        self._cache[key] = (started, resp)
        return resp

    async def _refresh(self, key: str) -> None:
        try:
            await self._lookup(key)
        except errors.DomainError:
            pass  # revoked keys left the cache; an unreachable billing lets the entry expire
        finally:
            self._refreshing.discard(key)

    # --- admission -----------------------------------------------------------------------------------------

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
        headers, lease = await self._admit(auth.key_id)
        if lease is not None:
            self._hold(auth.key_id, lease, request)
        # Server-Timing lets an operator (and tools/bench_billing.py) see what authentication and the
        # limits cost this request, through Envoy, without guessing from end-to-end latency.
        headers += (("server-timing", f"auth;dur={(time.perf_counter() - started) * 1000:.3f}"),)
        # From here on every error of this call carries the headers (the error interceptor adds them).
        error_headers_var.set(headers)
        if not _scope_ok(scopes, scope):
            raise errors.permission_denied(f"This API key lacks the '{scope}' permission")
        return Caller(auth.key_id, auth.account.account_id, scopes, auth.account.plan,
                      auth.account.limits.max_cvs_per_job, headers)

    async def _admit(self, key_id: str) -> tuple[Metadata, str | None]:
        """Counts one request and takes a slot, from what this gateway holds or from billing.

        Whatever way it ends (a refusal, a failure, the client going away while billing is asked), a
        request that is not admitted puts back what it took.
        """
        self._start()
        now = time.monotonic()
        q = self._quotas.get(key_id)
        if q is None:
            q = self._quotas[key_id] = _KeyQuota(now)
        q.last_used = now
        taken = q.take(now)
        if taken is None and q.refill is not None:
            # The next block is on its way: wait for it rather than ask again (and take requests in the
            # order billing granted them, so the countdown stays in order). Nothing is held yet.
            await asyncio.shield(q.refill)
            now = time.monotonic()
            taken = q.take(now)
        lease = q.free.popitem()[0] if q.free else None
        admitted = False
        try:
            if taken is None or lease is None:
                answer = await self._call(key_id, q, 0 if taken else q.size(now), slot=lease is None)
                if answer is None:  # the limiter is unreachable: let the request through, without a slot
                    admitted = True
                    return (_headers(taken[0].limit, taken[1], taken[0].reset_unix) if taken else ()), lease
                resp, granted_lease = answer
                if taken is None:
                    taken = q.take(time.monotonic())
                    if taken is None:
                        raise self._refusal(resp, _headers(resp.limit, resp.remaining, resp.reset_unix))
                if lease is None:
                    # A slot billing granted now, else one freed here meanwhile, else one more try.
                    lease = granted_lease or (q.free.popitem()[0] if q.free else None)
                    if lease is None:
                        lease = await self._slot_again(key_id, q)
                    if lease is None:
                        raise self._refusal(resp, _headers(taken[0].limit, taken[1], taken[0].reset_unix))
            admitted = True
        finally:
            if not admitted:
                if taken is not None:
                    q.untake(*taken)
                if lease is not None:
                    self._park(q, lease)
        block, remaining = taken
        if q.refill is None:
            size = q.size(now)
            # Ask for the next block before this one runs out, so that requests do not wait for billing;
            # not for a key used now and then, and not near the end of its window.
            if size > 1 and q.available(now) <= size // 2 and q.last_remaining >= 3 * size:
                q.refill = asyncio.create_task(self._refill(key_id, q, size), name="quota-refill")
        return _headers(block.limit, remaining, block.reset_unix), lease

    async def _slot_again(self, key_id: str, q: _KeyQuota) -> str | None:
        """Asks once more for a slot, a moment later: a slot freed at another gateway reaches billing a
        few milliseconds after its request ended, and a request should not be refused for that."""
        await asyncio.sleep(2 * RELEASE_DELAY_SECONDS)
        if q.free:
            return q.free.popitem()[0]
        answer = await self._call(key_id, q, 0, slot=True)
        return answer[1] if answer else None

    async def _call(self, key_id: str, q: _KeyQuota, requests: int, *,
                    slot: bool) -> tuple[billing.LeaseQuotaResponse, str | None] | None:
        """Asks billing for `requests` and a slot in a task of its own, so that a request cancelled while
        it waits (the client went away) loses nothing: the block joins the key's, and the slot, when the
        waiter is gone, is kept or freed like any slot whose request ended. None when billing is
        unreachable."""
        task = asyncio.create_task(self._lease_into(key_id, q, requests, slot=slot))
        self._track(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            def orphaned(t: asyncio.Task[tuple[billing.LeaseQuotaResponse, str | None] | None]) -> None:
                if not t.cancelled() and t.exception() is None and (res := t.result()) and res[1]:
                    self._park(q, res[1])

            task.add_done_callback(orphaned)
            raise

    async def _lease_into(self, key_id: str, q: _KeyQuota, requests: int, *,
                          slot: bool) -> tuple[billing.LeaseQuotaResponse, str | None] | None:
        asked = [str(uuid.uuid4())] if slot else []
        resp = await self._lease(key_id, requests, asked)
        if resp is None:
            return None
        now = time.monotonic()
        q.add(resp, now)
        if asked and resp.leases_granted:
            self._held[asked[0]] = now
            return resp, asked[0]
        return resp, None

    async def _lease(self, key_id: str, requests: int, lease_ids: list[str]) -> billing.LeaseQuotaResponse | None:
        """One LeaseQuota call, carrying slots to free and the key's blocks to settle; None when billing
        is unreachable (the request is then let through)."""
        release, self._to_release = self._to_release[:MAX_IDS_PER_CALL], self._to_release[MAX_IDS_PER_CALL:]
        returns = self._returns.pop(key_id, [])
        answered = False
        try:
            resp: billing.LeaseQuotaResponse = await self._stub.LeaseQuota(
                billing.LeaseQuotaRequest(key_id=key_id, requests=requests, lease_ids=lease_ids,
                                          lease_seconds=self._lease_seconds, release_lease_ids=release,
                                          returns=returns[:MAX_IDS_PER_CALL]),
                timeout=BILLING_TIMEOUT_SECONDS)
            answered = True
            if len(returns) > MAX_IDS_PER_CALL:
                self._returns.setdefault(key_id, []).extend(returns[MAX_IDS_PER_CALL:])
            return resp
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # the key was deleted since it was looked up
                returns = []
                raise errors.unauthenticated() from None
            if exc.code() not in _UNREACHABLE:
                raise
            log.warning("rate limiter unreachable; request let through", extra={"code": exc.code().name})
            return None
        finally:
            if not answered:
                # Whether or not billing applied the call, sending it again is safe: freeing is idempotent,
                # a settlement is a figure rather than a difference, and slots asked for are freed.
                self._to_release += release + lease_ids
                if returns:
                    self._returns.setdefault(key_id, []).extend(returns)
                self._wake_flusher()

    async def _refill(self, key_id: str, q: _KeyQuota, size: int) -> None:
        try:
            await self._lease_into(key_id, q, size, slot=False)
        except Exception as exc:  # the requests that need a block ask for it themselves
            log.warning("asking billing for the next block failed", extra={"error": type(exc).__name__})
        finally:
            q.refill = None

    @staticmethod
    def _refusal(rl: billing.LeaseQuotaResponse, headers: Metadata) -> errors.DomainError:
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

    def _hold(self, key_id: str, lease: str, request: Any) -> None:
        """Arranges for the slot to come back when the RPC ends."""
        q = self._quotas[key_id]
        q.in_use += 1

        def done(_: Any) -> None:
            self._free(q, lease)

        if _is_context(request):
            request.add_done_callback(done)
            return
        task = asyncio.current_task()
        if task is None:  # not inside an RPC's task: nothing marks its end, so give the slot back now
            self._free(q, lease)
        else:
            task.add_done_callback(done)

    def _free(self, q: _KeyQuota, lease: str) -> None:
        q.in_use -= 1
        if lease not in self._held:
            return
        if self._closed:
            self._held.pop(lease)
            self._to_release.append(lease)
            return
        self._park(q, lease)

    def _park(self, q: _KeyQuota, lease: str) -> None:
        """Keeps a free slot for the key's next request, or frees it when enough are kept already."""
        q.free[lease] = time.monotonic()
        while len(q.free) > q.spare:
            oldest = next(iter(q.free))
            del q.free[oldest]
            self._held.pop(oldest, None)
            self._to_release.append(oldest)
            self._wake_flusher()

    def _spawn(self, coro: Any) -> None:
        self._track(asyncio.create_task(coro))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _start(self) -> None:
        # Started on first use, on the server's loop (the Authenticator is built before it runs RPCs).
        if self._tasks or self._closed:
            return
        self._wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._housekeeping_loop(), name="quota-housekeeping"),
                       asyncio.create_task(self._renew_loop(), name="lease-renewal")]

    def _wake_flusher(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _housekeeping_loop(self) -> None:
        """Gives back what waited long enough: slots no request took within the linger time, and the
        unspent rest of expired blocks; and frees released slots that no call to billing carried within a
        few milliseconds (a busy gateway frees them with its next calls)."""
        assert self._wake is not None
        while not self._closed:
            # asyncio.timeout, not wait_for: wait_for can swallow the cancellation close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOUSEKEEPING_SECONDS):
                    await self._wake.wait()
            if self._wake.is_set():
                await asyncio.sleep(RELEASE_DELAY_SECONDS)
                self._wake.clear()
            try:
                await self._housekeeping()
            except Exception as exc:  # an unreachable billing or a closed channel: never stop the loop
                log.warning("giving back slots and requests failed; retrying", extra={"error": type(exc).__name__})

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        for key_id, q in list(self._quotas.items()):
            back = q.expired(now)
            if back:
                self._returns.setdefault(key_id, []).extend(back)
            for lease, freed in list(q.free.items()):
                if now - freed >= SLOT_LINGER_SECONDS:
                    del q.free[lease]
                    self._held.pop(lease, None)
                    self._to_release.append(lease)
            if q.idle(now):
                del self._quotas[key_id]
        await self._flush()

    async def _flush(self) -> None:
        for key_id in list(self._returns):
            # Blocks are settled with a call for their key (one key per call, so calls never wait on each
            # other's keys); slots to free ride along.
            with contextlib.suppress(errors.DomainError):  # a deleted key: nothing left to settle
                await self._lease(key_id, 0, [])
        while self._to_release:
            batch, self._to_release = self._to_release[:MAX_IDS_PER_CALL], self._to_release[MAX_IDS_PER_CALL:]
            try:
                await self._stub.ReleaseLeases(billing.ReleaseLeasesRequest(lease_ids=batch),
                                               timeout=BILLING_TIMEOUT_SECONDS)
            except Exception as exc:
                # The slots expire by themselves; retrying here could only pile up work.
                log.warning("releasing concurrent-request slots failed; they will expire",
                            extra={"count": len(batch), "error": type(exc).__name__})

    async def _renew_loop(self) -> None:
        """Keeps the slots of long requests (uploads) alive; only a crashed gateway's slots expire."""
        while not self._closed:
            await asyncio.sleep(self._renew_after / 2)
            now = time.monotonic()
            due = [lease for lease, at in self._held.items() if now - at >= self._renew_after]
            for i in range(0, len(due), MAX_IDS_PER_CALL):
                chunk = due[i:i + MAX_IDS_PER_CALL]
                try:
                    await self._stub.RenewLeases(
                        billing.RenewLeasesRequest(lease_ids=chunk, lease_seconds=self._lease_seconds),
                        timeout=BILLING_TIMEOUT_SECONDS)
                except Exception as exc:  # the slots are retried on the next round, before they expire
                    log.warning("renewing concurrent-request slots failed", extra={"error": type(exc).__name__})
                    continue
                for lease in chunk:
                    if lease in self._held:
                        self._held[lease] = now

    async def close(self) -> None:
        """Stops the background work, settles every block and frees every slot (on shutdown, after the
        server stopped taking requests). Bounded: billing being down does not hold the shutdown."""
        self._closed = True
        pending = [*self._tasks, *self._background,
                   *(q.refill for q in self._quotas.values() if q.refill is not None)]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        self._tasks = []
        for key_id, q in list(self._quotas.items()):
            back = q.expired(float("inf"))
            if back:
                self._returns.setdefault(key_id, []).extend(back)
            q.free.clear()
        self._to_release.extend(self._held)
        self._held.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await self._flush()
