"""Webhook endpoints and their delivery log (`/v1/webhooks...`), answered by the notifier.

Managing endpoints (create, change, delete, rotate, test, replay) needs `webhooks:write` (or `admin`):
an endpoint receives the account's events, so registering one is as sensitive as issuing a key. Reading
them needs `webhooks:read` (implied by `webhooks:write`); `match:read` keeps reading them too, as it
did before the webhook scopes existed. The notifier checks the URL against the egress policy and
answers the seeds' codes (`INSECURE_WEBHOOK_URL`, `PRIVATE_WEBHOOK_URL`), which reach the client
unchanged. Errors after authentication carry the caller's X-RateLimit-* headers.

The well-known webhook id `submissions` names the account's submission webhooks (every per-batch
`webhook_url`): `POST /v1/webhooks/submissions/rotate-secret` returns the secret that signs them.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from google.protobuf import struct_pb2

from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.api.notifier.v1 import notifier_service_pb2 as notifier
from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc
from cvmatch.api.notifier.v1 import webhook_pb2
from cvmatch.gateway.auth import Authenticator, Caller
from cvmatch.gateway.respond import meta, nullable, rfc3339, send_headers
from cvmatch.platform import errors

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

# Any one of these scopes allows the action (billing expands `admin` and `webhooks:write` to what they imply).
MANAGE: tuple[str, ...] = ("webhooks:write", "admin")
READ: tuple[str, ...] = ("webhooks:read", "match:read", "admin")
SUBMISSIONS_ID = "submissions"
SUBMISSION_EVENTS = ("batch.completed", "batch.failed")


def webhook_data(e: webhook_pb2.WebhookEndpoint, secret: str = "") -> resources_pb2.WebhookData:
    """The public form of an endpoint; ``secret`` only right after create or rotate."""
    return resources_pb2.WebhookData(
        id=e.endpoint_id, url=e.url, events=list(e.events), enabled=e.enabled, description=e.description,
        created_at=rfc3339(e.create_time), updated_at=rfc3339(e.update_time), secret=secret,
        disabled_reason=e.disabled_reason)


def delivery_data(d: webhook_pb2.Delivery) -> resources_pb2.WebhookDeliveryData:
    """The public form of a delivery and its attempts."""
    return resources_pb2.WebhookDeliveryData(
        id=d.delivery_id, webhook_id=d.endpoint_id, event_id=d.event_id, event=d.event_type, status=d.status,
        attempts=d.attempts, created_at=rfc3339(d.create_time),
        next_attempt_at=nullable(rfc3339(d.next_attempt_time) if d.HasField("next_attempt_time") else ""),
        attempt_log=[resources_pb2.WebhookAttemptData(
            attempt=a.attempt, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error,
            attempted_at=rfc3339(a.attempt_time)) for a in d.attempt_log])


def _id(value: str, field_name: str) -> str:
    value = value.strip()
    if not value:
        raise errors.invalid_input(f"'{field_name}' is required", field_name)
    return value


class WebhooksService(gw_grpc.WebhooksServiceServicer):
    """SkillSync-style webhook management, in its response envelope."""

    def __init__(self, auth: Authenticator, notifier_channel: grpc.aio.Channel) -> None:
        self._auth = auth
        self._notifier = notifier_grpc.NotifierServiceStub(notifier_channel)

    async def _authorize(self, context: Context, scopes: tuple[str, ...]) -> Caller:
        """The caller when its key holds one of ``scopes``; 403 MISSING_PERMISSION (with the rate headers)
        naming the first otherwise."""
        caller = await self._auth.authorize(context)
        if not caller.scopes & set(scopes):
            raise errors.permission_denied(f"This API key lacks the '{scopes[0]}' permission")
        return caller

    async def CreateWebhook(self, request: gw.CreateWebhookRequest, context: Context) -> gw.WebhookResponse:
        caller = await self._authorize(context, MANAGE)
        resp: notifier.CreateEndpointResponse = await self._notifier.CreateEndpoint(
            notifier.CreateEndpointRequest(account_id=caller.account_id, url=request.url,
                                           events=list(request.events), description=request.description))
        await send_headers(context, caller, 201)
        return gw.WebhookResponse(success=True, data=webhook_data(resp.endpoint, resp.secret),
                                  message="Webhook created. Store the secret now: it is not shown again.",
                                  meta=meta())

    async def ListWebhooks(self, request: gw.ListWebhooksRequest, context: Context) -> gw.ListWebhooksResponse:
        caller = await self._authorize(context, READ)
        resp: notifier.ListEndpointsResponse = await self._notifier.ListEndpoints(
            notifier.ListEndpointsRequest(account_id=caller.account_id))
        await send_headers(context, caller)
        return gw.ListWebhooksResponse(success=True, data=[webhook_data(e) for e in resp.endpoints], message="OK",
                                       meta=meta())

    async def GetWebhook(self, request: gw.GetWebhookRequest, context: Context) -> gw.WebhookResponse:
        caller = await self._authorize(context, READ)
        resp: notifier.GetEndpointResponse = await self._notifier.GetEndpoint(notifier.GetEndpointRequest(
            account_id=caller.account_id, endpoint_id=_id(request.webhook_id, "webhook_id")))
        await send_headers(context, caller)
        return gw.WebhookResponse(success=True, data=webhook_data(resp.endpoint), message="OK", meta=meta())

    async def UpdateWebhook(self, request: gw.UpdateWebhookRequest, context: Context) -> gw.WebhookResponse:
        caller = await self._authorize(context, MANAGE)
        req = notifier.UpdateEndpointRequest(account_id=caller.account_id,
                                             endpoint_id=_id(request.webhook_id, "webhook_id"))
        if request.HasField("url"):
            req.url = request.url
        # JSON cannot tell an absent list from an empty one here: an empty list leaves the events alone.
        if request.events:
            req.events.extend(request.events)
            req.update_events = True
        if request.HasField("enabled"):
            req.enabled = request.enabled
        if request.HasField("description"):
            req.description = request.description
        resp: notifier.UpdateEndpointResponse = await self._notifier.UpdateEndpoint(req)
        await send_headers(context, caller)
        return gw.WebhookResponse(success=True, data=webhook_data(resp.endpoint), message="Webhook updated",
                                  meta=meta())

    async def DeleteWebhook(self, request: gw.DeleteWebhookRequest, context: Context) -> gw.DeleteWebhookResponse:
        caller = await self._authorize(context, MANAGE)
        await self._notifier.DeleteEndpoint(notifier.DeleteEndpointRequest(
            account_id=caller.account_id, endpoint_id=_id(request.webhook_id, "webhook_id")))
        await send_headers(context, caller)
        return gw.DeleteWebhookResponse(success=True, message="Webhook deleted", meta=meta())

    async def RotateWebhookSecret(self, request: gw.RotateWebhookSecretRequest,
                                  context: Context) -> gw.WebhookResponse:
        caller = await self._authorize(context, MANAGE)
        endpoint_id = _id(request.webhook_id, "webhook_id")
        req = notifier.RotateSecretRequest(account_id=caller.account_id, endpoint_id=endpoint_id)
        if request.HasField("overlap_seconds"):
            req.overlap_seconds = request.overlap_seconds
        rotated: notifier.RotateSecretResponse = await self._notifier.RotateSecret(req)
        if endpoint_id == SUBMISSIONS_ID:
            # Not a stored endpoint: the account-wide secret of every per-batch webhook_url.
            data = resources_pb2.WebhookData(
                id=SUBMISSIONS_ID, events=list(SUBMISSION_EVENTS), enabled=True, secret=rotated.secret,
                description="Signs every submission's webhook_url deliveries")
        else:
            got: notifier.GetEndpointResponse = await self._notifier.GetEndpoint(notifier.GetEndpointRequest(
                account_id=caller.account_id, endpoint_id=endpoint_id))
            data = webhook_data(got.endpoint, rotated.secret)
        await send_headers(context, caller)
        return gw.WebhookResponse(
            success=True, data=data, meta=meta(),
            message="Secret rotated. The previous secret keeps signing during the overlap; store the new one now.")

    async def TestWebhook(self, request: gw.TestWebhookRequest, context: Context) -> gw.WebhookDeliveryResponse:
        caller = await self._authorize(context, MANAGE)
        resp: notifier.SendTestEventResponse = await self._notifier.SendTestEvent(notifier.SendTestEventRequest(
            account_id=caller.account_id, endpoint_id=_id(request.webhook_id, "webhook_id")))
        # Queued, not yet sent: the delivery log shows the outcome.
        await send_headers(context, caller, 202)
        return gw.WebhookDeliveryResponse(success=True, data=delivery_data(resp.delivery),
                                          message="Test event queued", meta=meta())

    async def ListWebhookDeliveries(self, request: gw.ListWebhookDeliveriesRequest,
                                    context: Context) -> gw.ListWebhookDeliveriesResponse:
        caller = await self._authorize(context, READ)
        resp: notifier.ListDeliveriesResponse = await self._notifier.ListDeliveries(
            notifier.ListDeliveriesRequest(
                account_id=caller.account_id, endpoint_id=_id(request.webhook_id, "webhook_id"),
                status=request.status, limit=request.limit if request.HasField("limit") else 0))
        await send_headers(context, caller)
        return gw.ListWebhookDeliveriesResponse(success=True, data=[delivery_data(d) for d in resp.deliveries],
                                                message="OK", meta=meta())

    async def ReplayWebhookDeliveries(self, request: gw.ReplayWebhookDeliveriesRequest,
                                      context: Context) -> gw.ReplayWebhookDeliveriesResponse:
        caller = await self._authorize(context, MANAGE)
        delivery_id = _id(request.delivery_id, "delivery_id")
        resp: notifier.ReplayDeliveriesResponse = await self._notifier.ReplayDeliveries(
            notifier.ReplayDeliveriesRequest(account_id=caller.account_id,
                                             endpoint_id=_id(request.webhook_id, "webhook_id"),
                                             delivery_id="" if delivery_id == "all" else delivery_id))
        data = struct_pb2.Struct()
        data.update({"replayed": resp.replayed})
        await send_headers(context, caller, 202)
        return gw.ReplayWebhookDeliveriesResponse(success=True, data=data,
                                                  message=f"{resp.replayed} deliveries queued again", meta=meta())
