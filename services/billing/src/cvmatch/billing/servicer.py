"""gRPC surface of the billing service: proto <-> domain only."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias

import grpc

from cvmatch.api.billing.v1 import account_pb2, billing_service_pb2_grpc
from cvmatch.api.billing.v1 import billing_service_pb2 as pb
from cvmatch.billing import domain
from cvmatch.billing.domain import Plan
from cvmatch.billing.repository import Repository
from cvmatch.platform import errors
from cvmatch.platform.timestamps import timestamp

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

PLAN_TO_PROTO: dict[Plan, int] = {
    Plan.FREE: account_pb2.PLAN_FREE,
    Plan.STARTER: account_pb2.PLAN_STARTER,
    Plan.API: account_pb2.PLAN_API,
    Plan.PRO: account_pb2.PLAN_PRO,
    Plan.ENTERPRISE: account_pb2.PLAN_ENTERPRISE,
    Plan.CUSTOM: account_pb2.PLAN_CUSTOM,
}
PLAN_FROM_PROTO: dict[int, Plan] = {v: k for k, v in PLAN_TO_PROTO.items()}

LIMIT_TO_PROTO: dict[domain.LimitKind, int] = {
    domain.LimitKind.NONE: pb.RATE_LIMIT_KIND_UNSPECIFIED,
    domain.LimitKind.PER_MINUTE: pb.RATE_LIMIT_KIND_PER_MINUTE,
    domain.LimitKind.PER_DAY: pb.RATE_LIMIT_KIND_PER_DAY,
    domain.LimitKind.BURST: pb.RATE_LIMIT_KIND_BURST,
    domain.LimitKind.CONCURRENCY: pb.RATE_LIMIT_KIND_CONCURRENCY,
}

MAX_LIST = 1000
MAX_NAME = 200
MAX_ID = 200


def _plan(value: int, *, default: Plan | None = None) -> Plan:
    if value == account_pb2.PLAN_UNSPECIFIED and default is not None:
        return default
    try:
        return PLAN_FROM_PROTO[value]
    except KeyError:
        raise errors.invalid_input("A plan is required", "plan") from None


def _limits(limits: domain.PlanLimits) -> account_pb2.PlanLimits:
    return account_pb2.PlanLimits(
        requests_per_minute=limits.requests_per_minute, requests_per_day=limits.requests_per_day,
        burst=limits.burst, concurrent_requests=limits.concurrent_requests, max_cvs_per_job=limits.max_cvs_per_job)


def account_proto(a: domain.Account) -> account_pb2.Account:
    """The wire form of an account."""
    return account_pb2.Account(account_id=a.account_id, name=a.name, plan=PLAN_TO_PROTO[a.plan],  # type: ignore[arg-type]
                               limits=_limits(a.limits), create_time=timestamp(a.created_at))


def key_proto(k: domain.ApiKey) -> account_pb2.ApiKey:
    """The wire form of a key (never its secret)."""
    return account_pb2.ApiKey(key_id=k.key_id, account_id=k.account_id, name=k.name, prefix=k.prefix,
                              scopes=list(k.scopes), create_time=timestamp(k.created_at),
                              expire_time=timestamp(k.expires_at), revoke_time=timestamp(k.revoked_at),
                              last_used_time=timestamp(k.last_used_at))


def _positive(value: int, field: str) -> int:
    if value <= 0:
        raise errors.invalid_input(f"'{field}' must be a positive integer", field)
    return value


def _text(value: str, field: str, *, required: bool = True, maximum: int = MAX_ID) -> str:
    value = value.strip()
    if required and not value:
        raise errors.invalid_input(f"'{field}' is required", field)
    if len(value) > maximum:
        raise errors.invalid_input(f"'{field}' is longer than {maximum} characters", field)
    return value


def _lease_list(ids: Any) -> list[str]:
    if len(ids) > domain.MAX_LEASES_PER_CALL:
        raise errors.invalid_input(f"At most {domain.MAX_LEASES_PER_CALL} lease ids per call", "lease_ids")
    return [i.strip() for i in ids]


def _rule(exc: domain.InvalidValue) -> errors.DomainError:
    return errors.invalid_input(exc.message, exc.field)


def _note(e: domain.LedgerEntry) -> str:
    # The proto has no price field: the audit trail keeps grant id and price readable in the note.
    if e.kind is not domain.Kind.GRANT:
        return e.note
    return f"{e.note} [grant_id={e.grant_id} price_cents={e.price_cents or 0}]".strip()


class BillingService(billing_service_pb2_grpc.BillingServiceServicer):
    """Accounts, keys, permissions, rate limits and the credit ledger."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def Authenticate(self, request: pb.AuthenticateRequest, context: Context) -> pb.AuthenticateResponse:
        """401 for a missing, unknown, expired or revoked key; 403 for a missing scope."""
        if not request.api_key:
            raise errors.unauthenticated()
        auth = await self._repo.authenticate(request.api_key, request.required_scope.strip())
        return pb.AuthenticateResponse(key_id=auth.key_id, account=account_proto(auth.account),
                                       scopes=sorted(auth.scopes))

    async def LeaseQuota(self, request: pb.LeaseQuotaRequest, context: Context) -> pb.LeaseQuotaResponse:
        """Grants a block of the key's allowance and slots for a gateway to spend locally."""
        if not 0 <= request.requests <= domain.MAX_QUOTA_REQUESTS:
            raise errors.invalid_input(f"'requests' must be between 0 and {domain.MAX_QUOTA_REQUESTS}", "requests")
        if len(request.returns) > domain.MAX_LEASES_PER_CALL:
            raise errors.invalid_input(f"At most {domain.MAX_LEASES_PER_CALL} returns per call", "returns")
        g = await self._repo.lease_quota(_text(request.key_id, "key_id"), request.requests,
                                         _lease_list(request.lease_ids), request.lease_seconds,
                                         _lease_list(request.release_lease_ids),
                                         [(r.grant_id, r.spent) for r in request.returns])
        return pb.LeaseQuotaResponse(granted=g.granted, grant_id=g.grant_id, limit=g.limit, remaining=g.remaining,
                                     reset_unix=g.reset_unix, retry_after_seconds=g.retry_after_seconds,
                                     refused_by=LIMIT_TO_PROTO[g.refused_by],  # type: ignore[arg-type]
                                     concurrent_limit=g.concurrent_limit, concurrent_active=g.concurrent_active,
                                     leases_granted=g.leases_granted)

    async def ReleaseLeases(self, request: pb.ReleaseLeasesRequest, context: Context) -> pb.ReleaseLeasesResponse:
        """Frees concurrent-request slots (ids that are unknown or already free are skipped)."""
        return pb.ReleaseLeasesResponse(released=await self._repo.release_leases(_lease_list(request.lease_ids)))

    async def RenewLeases(self, request: pb.RenewLeasesRequest, context: Context) -> pb.RenewLeasesResponse:
        """Extends slots still held by running requests."""
        return pb.RenewLeasesResponse(renewed=await self._repo.renew_leases(_lease_list(request.lease_ids),
                                                                            request.lease_seconds))

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: Context) -> pb.CreateApiKeyResponse:
        """Creates a key; the secret is in this response only."""
        try:
            scopes = domain.validate_scopes(request.scopes)
        except domain.InvalidValue as exc:
            raise _rule(exc) from None
        expires = request.expire_time.ToDatetime(dt.UTC) if request.HasField("expire_time") else None
        if expires is not None and expires <= dt.datetime.now(dt.UTC):
            raise errors.invalid_input("'expire_time' must be in the future", "expire_time")
        name = _text(request.name, "name", required=False, maximum=MAX_NAME) or "API key"
        key, secret = await self._repo.create_key(_positive(request.account_id, "account_id"), name, scopes,
                                                  expires)
        return pb.CreateApiKeyResponse(api_key=key_proto(key), secret=secret)

    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context: Context) -> pb.ListApiKeysResponse:
        """The account's keys, without secrets."""
        keys = await self._repo.list_keys(_positive(request.account_id, "account_id"))
        return pb.ListApiKeysResponse(api_keys=[key_proto(k) for k in keys])

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: Context) -> pb.RevokeApiKeyResponse:
        """Revokes a key; the next Authenticate refuses it."""
        key = await self._repo.revoke_key(_positive(request.account_id, "account_id"),
                                          _text(request.key_id, "key_id"))
        return pb.RevokeApiKeyResponse(api_key=key_proto(key))

    async def CreateAccount(self, request: pb.CreateAccountRequest,
                            context: Context) -> pb.CreateAccountResponse:
        """Creates an account (Free unless told) with its initial credits recorded as a grant."""
        plan = _plan(request.plan, default=Plan.FREE)
        if plan is Plan.CUSTOM:
            raise errors.invalid_input("Create the account, then SetPlan with custom_limits", "plan")
        if request.initial_credits < 0:
            raise errors.invalid_input("'initial_credits' must not be negative", "initial_credits")
        account = await self._repo.create_account(_text(request.name, "name", maximum=MAX_NAME), plan,
                                                  domain.limits_for(plan), request.initial_credits)
        return pb.CreateAccountResponse(account=account_proto(account))

    async def GetAccount(self, request: pb.GetAccountRequest, context: Context) -> pb.GetAccountResponse:
        """The account and its limits."""
        return pb.GetAccountResponse(account=account_proto(
            await self._repo.get_account(_positive(request.account_id, "account_id"))))

    async def SetPlan(self, request: pb.SetPlanRequest, context: Context) -> pb.SetPlanResponse:
        """Changes the plan; Custom takes `custom_limits`."""
        plan = _plan(request.plan)
        custom = None
        if request.HasField("custom_limits"):
            c = request.custom_limits
            custom = domain.PlanLimits(c.requests_per_minute, c.requests_per_day, c.burst,
                                       c.concurrent_requests, c.max_cvs_per_job)
        try:
            limits = domain.limits_for(plan, custom)
        except domain.InvalidValue as exc:
            raise _rule(exc) from None
        account = await self._repo.set_plan(_positive(request.account_id, "account_id"), plan, limits)
        return pb.SetPlanResponse(account=account_proto(account))

    async def GrantCredits(self, request: pb.GrantCreditsRequest, context: Context) -> pb.GrantCreditsResponse:
        """Adds credits with their price; idempotent by `grant_id`."""
        if request.price_cents < 0:
            raise errors.invalid_input("'price_cents' must not be negative", "price_cents")
        bal = await self._repo.grant(_positive(request.account_id, "account_id"),
                                     _positive(request.credits, "credits"), request.price_cents,
                                     _text(request.note, "note", required=False, maximum=1000),
                                     _text(request.grant_id, "grant_id", required=False) or None)
        return pb.GrantCreditsResponse(available=bal.available)

    async def ReserveCredits(self, request: pb.ReserveCreditsRequest,
                             context: Context) -> pb.ReserveCreditsResponse:
        """Holds credits for a batch; 402 INSUFFICIENT_CREDITS when short; idempotent per batch."""
        bal, batch = await self._repo.reserve(_positive(request.account_id, "account_id"),
                                              _text(request.batch_id, "batch_id"),
                                              _positive(request.credits, "credits"))
        return pb.ReserveCreditsResponse(available=bal.available, reserved=batch.reserved)

    async def ReleaseCredits(self, request: pb.ReleaseCreditsRequest,
                             context: Context) -> pb.ReleaseCreditsResponse:
        """Releases what a batch still holds and settles it; a replay answers the same."""
        matched = None
        if request.HasField("matched_candidates"):
            if request.matched_candidates < 0:
                raise errors.invalid_input("'matched_candidates' must not be negative", "matched_candidates")
            matched = request.matched_candidates
        batch = await self._repo.release(_positive(request.account_id, "account_id"),
                                         _text(request.batch_id, "batch_id"), matched)
        return pb.ReleaseCreditsResponse(released=batch.released)

    async def GetBalance(self, request: pb.GetBalanceRequest, context: Context) -> pb.GetBalanceResponse:
        """available, held (`reserved`), charged (`captured`) and granted credits."""
        bal = await self._repo.balance(_positive(request.account_id, "account_id"))
        return pb.GetBalanceResponse(available=bal.available, reserved=bal.held, captured=bal.captured,
                                     granted=bal.granted)

    async def ListLedgerEntries(self, request: pb.ListLedgerEntriesRequest,
                                context: Context) -> pb.ListLedgerEntriesResponse:
        """The newest entries first (default 100, at most 1000)."""
        limit = request.limit if request.limit > 0 else 100
        entries = await self._repo.list_entries(_positive(request.account_id, "account_id"),
                                                _text(request.batch_id, "batch_id", required=False),
                                                min(limit, MAX_LIST))
        return pb.ListLedgerEntriesResponse(entries=[
            account_pb2.LedgerEntry(entry_id=e.entry_id, account_id=e.account_id, kind=e.kind.value,
                                    amount=e.amount, batch_id=e.batch_id, candidate_id=e.candidate_id,
                                    note=_note(e),
                                    create_time=timestamp(e.created_at))
            for e in entries])
