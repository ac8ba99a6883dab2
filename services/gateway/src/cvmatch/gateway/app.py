"""Assembles the gateway: the public gRPC services Envoy transcodes, over clients of the internal ones."""

from __future__ import annotations

from cvmatch.api.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from cvmatch.gateway.accounts import ApiKeysService, CreditsService
from cvmatch.gateway.auth import Authenticator
from cvmatch.gateway.backends import Backends
from cvmatch.gateway.batches import BatchJobsService
from cvmatch.gateway.config import Settings
from cvmatch.gateway.matching import DeepMatchService, MatchJobsService
from cvmatch.gateway.openapi import MetaService
from cvmatch.gateway.submitting import Submitter
from cvmatch.gateway.webhooks import WebhooksService
from cvmatch.platform.grpc_client import open_channel
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

MIGRATIONS = None
PUBLIC_SERVICES = [s.full_name for s in gateway_service_pb2.DESCRIPTOR.services_by_name.values()]


def build(settings: Settings) -> ServiceSpec:
    """The gateway as the platform runs it: stateless, no database, no broker."""

    async def setup(rt: Runtime) -> None:
        billing = open_channel(settings.billing_addr)
        rt.on_close(billing.close)
        auth = Authenticator(billing, settings.auth_cache_seconds)
        rt.on_close(auth.close)  # closers run in reverse: releases held slots before the channel closes
        gateway_service_pb2_grpc.add_CreditsServiceServicer_to_server(CreditsService(auth, billing), rt.server)
        gateway_service_pb2_grpc.add_ApiKeysServiceServicer_to_server(ApiKeysService(auth, billing), rt.server)
        ingest = open_channel(settings.ingest_addr)
        matcher = open_channel(settings.matcher_addr)
        notifier = open_channel(settings.notifier_addr)
        for channel in (ingest, matcher, notifier):
            rt.on_close(channel.close)
        submitter = Submitter(auth, Backends(ingest, matcher, notifier), settings.max_request_bytes,
                              settings.max_file_bytes)
        gateway_service_pb2_grpc.add_BatchJobsServiceServicer_to_server(BatchJobsService(submitter), rt.server)
        gateway_service_pb2_grpc.add_MatchJobsServiceServicer_to_server(MatchJobsService(submitter), rt.server)
        gateway_service_pb2_grpc.add_DeepMatchServiceServicer_to_server(DeepMatchService(submitter), rt.server)
        gateway_service_pb2_grpc.add_WebhooksServiceServicer_to_server(WebhooksService(auth, notifier), rt.server)
        gateway_service_pb2_grpc.add_MetaServiceServicer_to_server(MetaService(), rt.server)

    return ServiceSpec(name="gateway", grpc_services=PUBLIC_SERVICES, setup=setup,
                       needs_database=False, needs_nats=False, relay_outbox=False)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
