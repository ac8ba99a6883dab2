"""gRPC surface of the notifier service: proto <-> domain only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from cvmatch.api.notifier.v1 import notifier_service_pb2 as pb
from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc, webhook_pb2
from cvmatch.notifier import domain, errors
from cvmatch.notifier.repository import Repository
from cvmatch.notifier.webhooks import (
    EgressPolicy,
    Resolver,
    WebhookDestinationError,
    check_destination,
    generate_secret,
)
from cvmatch.platform.timestamps import timestamp

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

MAX_OVERLAP_SECONDS = 7 * 86400


def endpoint_proto(e: domain.Endpoint) -> webhook_pb2.WebhookEndpoint:
    """The wire form of an endpoint (never its secret)."""
    return webhook_pb2.WebhookEndpoint(
        endpoint_id=str(e.endpoint_id), account_id=e.account_id, url=e.url, events=list(e.events),
        enabled=e.enabled, description=e.description, create_time=timestamp(e.created_at),
        update_time=timestamp(e.updated_at),
        batch_id=str(e.batch_id) if e.batch_id else "", disabled_reason=e.disabled_reason or "")


def delivery_proto(d: domain.Delivery) -> webhook_pb2.Delivery:
    """The wire form of a delivery and its attempt log."""
    return webhook_pb2.Delivery(
        delivery_id=str(d.delivery_id), endpoint_id=str(d.endpoint_id), event_id=d.message_id,
        event_type=d.event_type, status=d.status, attempts=d.attempts, next_attempt_time=timestamp(d.next_attempt_at),
        create_time=timestamp(d.created_at),
        attempt_log=[webhook_pb2.DeliveryAttempt(attempt=a.attempt, status_code=a.status_code or 0,
                                                 latency_ms=a.latency_ms, error=a.error or "",
                                                 attempt_time=timestamp(a.attempted_at)) for a in d.attempt_log])


def _account(value: int) -> int:
    if value <= 0:
        raise errors.invalid_input("'account_id' must be a positive integer", "account_id")
    return value


class NotifierService(notifier_service_pb2_grpc.NotifierServiceServicer):
    """Endpoints, secrets, test pings and the delivery log."""

    def __init__(self, repo: Repository, *, policy: EgressPolicy, resolver: Resolver | None,
                 default_overlap_seconds: int, wake: Callable[[int], None]) -> None:
        self._repo = repo
        self._policy = policy
        self._resolver = resolver
        self._default_overlap = default_overlap_seconds
        self._wake = wake

    async def _checked_url(self, url: str) -> str:
        """The normalised URL once it passes the egress policy (resolved now); else the seed's 400."""
        url = url.strip()
        if not url:
            raise errors.invalid_input("'url' is required", "url")
        if len(url) > domain.MAX_URL:
            raise errors.invalid_input(f"'url' is longer than {domain.MAX_URL} characters", "url")
        try:
            destination = await check_destination(url, self._policy, self._resolver)
        except WebhookDestinationError as exc:
            raise errors.destination_refused(exc) from None
        return destination.url

    async def CreateEndpoint(self, request: pb.CreateEndpointRequest, context: Context) -> pb.CreateEndpointResponse:
        account = _account(request.account_id)
        event_types = domain.normalise_events(request.events)
        description = domain.check_description(request.description)
        url = await self._checked_url(request.url)
        secret = generate_secret()
        endpoint = await self._repo.create_endpoint(account, url, event_types, description, secret)
        return pb.CreateEndpointResponse(endpoint=endpoint_proto(endpoint), secret=secret)

    async def ListEndpoints(self, request: pb.ListEndpointsRequest, context: Context) -> pb.ListEndpointsResponse:
        endpoints = await self._repo.list_endpoints(_account(request.account_id))
        return pb.ListEndpointsResponse(endpoints=[endpoint_proto(e) for e in endpoints])

    async def GetEndpoint(self, request: pb.GetEndpointRequest, context: Context) -> pb.GetEndpointResponse:
        endpoint = await self._repo.get_endpoint(_account(request.account_id),
                                                 domain.parse_uuid(request.endpoint_id, "webhook_id"))
        return pb.GetEndpointResponse(endpoint=endpoint_proto(endpoint))

    async def UpdateEndpoint(self, request: pb.UpdateEndpointRequest, context: Context) -> pb.UpdateEndpointResponse:
        account = _account(request.account_id)
        endpoint_id = domain.parse_uuid(request.endpoint_id, "webhook_id")
        event_types = domain.normalise_events(request.events) if request.update_events else None
        description = domain.check_description(request.description) if request.HasField("description") else None
        url = await self._checked_url(request.url) if request.HasField("url") else None
        endpoint = await self._repo.update_endpoint(
            account, endpoint_id, url=url, event_types=event_types,
            enabled=request.enabled if request.HasField("enabled") else None, description=description)
        if endpoint.enabled:
            self._wake(0)  # deliveries held while it was disabled are due now
        return pb.UpdateEndpointResponse(endpoint=endpoint_proto(endpoint))

    async def DeleteEndpoint(self, request: pb.DeleteEndpointRequest, context: Context) -> pb.DeleteEndpointResponse:
        await self._repo.delete_endpoint(_account(request.account_id),
                                         domain.parse_uuid(request.endpoint_id, "webhook_id"))
        return pb.DeleteEndpointResponse()

    async def RotateSecret(self, request: pb.RotateSecretRequest, context: Context) -> pb.RotateSecretResponse:
        """A new secret for an endpoint, or with the well-known id ``submissions`` for the account's
        submission webhooks (every per-batch webhook_url); the previous one keeps signing for the overlap."""
        account = _account(request.account_id)
        overlap = request.overlap_seconds if request.HasField("overlap_seconds") else self._default_overlap
        if not 0 <= overlap <= MAX_OVERLAP_SECONDS:
            raise errors.invalid_input(f"'overlap_seconds' must be between 0 and {MAX_OVERLAP_SECONDS}",
                                       "overlap_seconds")
        secret = generate_secret()
        if request.endpoint_id.strip() == domain.SUBMISSIONS_ID:
            await self._repo.rotate_submission_secret(account, secret, dt.timedelta(seconds=overlap))
        else:
            endpoint_id = domain.parse_uuid(request.endpoint_id, "webhook_id")
            await self._repo.rotate_secret(account, endpoint_id, secret, dt.timedelta(seconds=overlap))
        return pb.RotateSecretResponse(secret=secret)

    async def SendTestEvent(self, request: pb.SendTestEventRequest, context: Context) -> pb.SendTestEventResponse:
        account = _account(request.account_id)
        endpoint_id = domain.parse_uuid(request.endpoint_id, "webhook_id")
        delivery = await self._repo.create_test_delivery(account, endpoint_id, domain.ping_event(endpoint_id))
        self._wake(1)
        return pb.SendTestEventResponse(delivery=delivery_proto(delivery))

    async def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: Context) -> pb.ListDeliveriesResponse:
        deliveries = await self._repo.list_deliveries(
            _account(request.account_id), domain.parse_uuid(request.endpoint_id, "webhook_id"),
            domain.delivery_status(request.status), domain.delivery_limit(request.limit))
        return pb.ListDeliveriesResponse(deliveries=[delivery_proto(d) for d in deliveries])

    async def ReplayDeliveries(self, request: pb.ReplayDeliveriesRequest,
                               context: Context) -> pb.ReplayDeliveriesResponse:
        account = _account(request.account_id)
        endpoint_id = domain.parse_uuid(request.endpoint_id, "webhook_id")
        raw = request.delivery_id.strip()
        delivery_id = None if raw in ("", "all") else domain.parse_uuid(raw, "delivery_id")
        replayed = await self._repo.replay(account, endpoint_id, delivery_id)
        if replayed:
            self._wake(replayed)
        return pb.ReplayDeliveriesResponse(replayed=replayed)

    async def ValidateUrl(self, request: pb.ValidateUrlRequest, context: Context) -> pb.ValidateUrlResponse:
        await self._checked_url(request.url)
        return pb.ValidateUrlResponse()
