"""Assembles the ingest service: servicer, consumers and background work on the platform runtime."""

from __future__ import annotations

from pathlib import Path

from cvmatch.api.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from cvmatch.ingest.config import Settings
from cvmatch.ingest.servicer import IngestService
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name


def build(settings: Settings) -> ServiceSpec:
    """The service as the platform runs it."""

    async def setup(rt: Runtime) -> None:
        ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(IngestService(), rt.server)  # type: ignore[abstract]

    return ServiceSpec(name="ingest", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
