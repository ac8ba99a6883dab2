"""Credits and API keys: the account surface, answered by billing."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias

import grpc

from cvmatch.api.billing.v1 import account_pb2
from cvmatch.api.billing.v1 import billing_service_pb2 as billing
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.gateway.auth import Authenticator
from cvmatch.gateway.respond import meta, nullable, rfc3339, send_headers
from cvmatch.platform import errors

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class CreditsService(gw_grpc.CreditsServiceServicer):
    """`GET /api/credits/balance`."""

    def __init__(self, auth: Authenticator, billing_channel: grpc.aio.Channel) -> None:
        self._auth = auth
        self._billing = billing_grpc.BillingServiceStub(billing_channel)

    async def GetCreditBalance(self, request: gw.GetCreditBalanceRequest,
                               context: Context) -> gw.GetCreditBalanceResponse:
        caller = await self._auth.authorize(context, "match:read")
        bal: billing.GetBalanceResponse = await self._billing.GetBalance(
            billing.GetBalanceRequest(account_id=caller.account_id))
        await send_headers(context, caller)
        return gw.GetCreditBalanceResponse(balance=bal.available, available=bal.available,
                                           reserved=bal.reserved, used=bal.captured)


def _key_data(key: account_pb2.ApiKey, secret: str = "") -> resources_pb2.ApiKeyData:
    return resources_pb2.ApiKeyData(
        id=key.key_id, name=key.name, key=secret, prefix=key.prefix, scopes=list(key.scopes),
        expires_at=nullable(rfc3339(key.expire_time) if key.HasField("expire_time") else ""),
        created_at=rfc3339(key.create_time),
        revoked_at=nullable(rfc3339(key.revoke_time) if key.HasField("revoke_time") else ""),
    )


class ApiKeysService(gw_grpc.ApiKeysServiceServicer):
    """SkillSync's `/v1/auth/api-keys`, in its response envelope."""

    def __init__(self, auth: Authenticator, billing_channel: grpc.aio.Channel) -> None:
        self._auth = auth
        self._billing = billing_grpc.BillingServiceStub(billing_channel)

    async def CreateApiKey(self, request: gw.CreateApiKeyRequest, context: Context) -> gw.CreateApiKeyResponse:
        caller = await self._auth.authorize(context, "admin")
        if not request.name.strip():
            raise errors.invalid_input("The 'name' field is required", "name")
        req = billing.CreateApiKeyRequest(account_id=caller.account_id, name=request.name.strip(),
                                          scopes=list(request.scopes) or ["match:execute"])
        if request.expires_at:
            try:
                when = dt.datetime.fromisoformat(request.expires_at.replace("Z", "+00:00"))
            except ValueError:
                raise errors.invalid_input("'expires_at' must be an RFC 3339 timestamp", "expires_at") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            if when <= dt.datetime.now(dt.UTC):
                raise errors.invalid_input("'expires_at' must be in the future", "expires_at")
            req.expire_time.FromDatetime(when)
        resp: billing.CreateApiKeyResponse = await self._billing.CreateApiKey(req)
        await send_headers(context, caller, 201)
        return gw.CreateApiKeyResponse(success=True, data=_key_data(resp.api_key, resp.secret),
                                       message="API key created. Store it now: it is not shown again.",
                                       meta=meta())

    async def ListApiKeys(self, request: gw.ListApiKeysRequest, context: Context) -> gw.ListApiKeysResponse:
        caller = await self._auth.authorize(context, "admin")
        resp: billing.ListApiKeysResponse = await self._billing.ListApiKeys(
            billing.ListApiKeysRequest(account_id=caller.account_id))
        await send_headers(context, caller)
        return gw.ListApiKeysResponse(success=True, data=[_key_data(k) for k in resp.api_keys],
                                      message="OK", meta=meta())

    async def RevokeApiKey(self, request: gw.RevokeApiKeyRequest, context: Context) -> gw.RevokeApiKeyResponse:
        caller = await self._auth.authorize(context, "admin")
        resp: billing.RevokeApiKeyResponse = await self._billing.RevokeApiKey(
            billing.RevokeApiKeyRequest(account_id=caller.account_id, key_id=request.key_id))
        await send_headers(context, caller)
        return gw.RevokeApiKeyResponse(success=True, data=_key_data(resp.api_key), message="API key revoked",
                                       meta=meta())
