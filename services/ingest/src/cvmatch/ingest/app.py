"""Assembles the ingest service: servicer, consumers and background work on the platform runtime."""

from __future__ import annotations

import logging
from pathlib import Path

from cvmatch.api.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from cvmatch.ingest import events
from cvmatch.ingest.admission import Admission, GrpcBilling
from cvmatch.ingest.config import Settings
from cvmatch.ingest.extraction import ExtractionPool
from cvmatch.ingest.repository import Repository
from cvmatch.ingest.servicer import IngestService
from cvmatch.ingest.workers import Workers
from cvmatch.platform.consumer import Consumer
from cvmatch.platform.grpc_client import open_channel
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name


def build(settings: Settings) -> ServiceSpec:
    """The service as the platform runs it."""

    async def setup(rt: Runtime) -> None:
        pool, js = rt.require_pool(), rt.require_js()
        repo = Repository(pool)
        extraction = ExtractionPool(settings.limits, workers=settings.extraction_processes)
        await extraction.start()
        rt.on_close(extraction.close)
        channel = open_channel(settings.billing_addr)
        rt.on_close(channel.close)
        billing = GrpcBilling(channel)
        workers = Workers(settings, repo, extraction, billing)
        admission = Admission(settings, repo, extraction, billing, on_accepted=workers.wake)
        ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(
            IngestService(settings, repo, admission, extraction), rt.server)
        for sub in events.subscriptions(repo):
            consumer = Consumer(js, pool, events.CONSUMER, sub, max_deliveries=settings.common.max_deliveries,
                                ack_wait_seconds=settings.event_ack_wait_seconds)
            rt.spawn(consumer.run(), f"consume-{sub.subject}")
        for n in range(settings.workers):
            rt.spawn(workers.run_worker(n), f"extract-worker-{n}")
        rt.spawn(workers.run_reconciler(), "reconciler")
        log.info("ingest ready", extra={"workers": settings.workers,
                                        "extraction_processes": settings.extraction_processes})

    return ServiceSpec(name="ingest", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
