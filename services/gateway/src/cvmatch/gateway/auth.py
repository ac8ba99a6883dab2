"""Authentication and rate limiting of every public call, through billing.

Keys come as `X-API-Key` or `Authorization: Bearer`. Successful authentications are cached for a short,
bounded time (revocation still reaches every gateway within a second or two); the rate-limit check is
never cached because its state is shared by every gateway. If the limiter is unreachable the request
is let through and logged; authentication never fails open.
"""

from __future__ import annotations

import logging
import time
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


class Authenticator:
    """Resolves keys through billing, with a short cache, and counts requests against the limits."""

    def __init__(self, channel: grpc.aio.Channel, cache_seconds: float) -> None:
        self._stub = billing_grpc.BillingServiceStub(channel)
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, billing.AuthenticateResponse]] = {}

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
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, resp)
        return resp

    async def authorize(self, metadata: Any, scope: str = "") -> Caller:
        """Authenticates, checks the scope and the rate limit; raises the public error otherwise."""
        key = api_key_from(metadata)
        if not key:
            raise errors.unauthenticated()
        auth = await self._authenticate(key)
        scopes = frozenset(auth.scopes)
        headers: Metadata = ()
        try:
            rl: billing.CheckRateLimitResponse = await self._stub.CheckRateLimit(
                billing.CheckRateLimitRequest(key_id=auth.key_id, account_id=auth.account.account_id, cost=1),
                timeout=2.0)
            headers = (("x-ratelimit-limit", str(rl.limit)), ("x-ratelimit-remaining", str(rl.remaining)),
                       ("x-ratelimit-reset", str(rl.reset_unix)))
        except grpc.aio.AioRpcError:
            log.warning("rate limiter unreachable; request let through")
        else:
            if not rl.allowed:
                err = errors.rate_limited(
                    f"Rate limit exceeded: {rl.limit} requests per window; retry in {rl.retry_after_seconds} s",
                    rl.retry_after_seconds)
                err.details = {"limit": str(rl.limit), "reset": str(rl.reset_unix)}
                err.headers = headers
                raise err
        if not _scope_ok(scopes, scope):
            err = errors.permission_denied(f"This API key lacks the '{scope}' permission")
            err.headers = headers
            raise err
        return Caller(auth.key_id, auth.account.account_id, scopes, auth.account.plan,
                      auth.account.limits.max_cvs_per_job, headers)
