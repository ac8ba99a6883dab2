"""Assembles the notifier service: servicer, consumers and background work on the platform runtime."""

from __future__ import annotations

from pathlib import Path

from cvmatch.api.notifier.v1 import notifier_service_pb2, notifier_service_pb2_grpc
from cvmatch.notifier.config import Settings
from cvmatch.notifier.servicer import NotifierService
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"].full_name


def build(settings: Settings) -> ServiceSpec:
    """The service as the platform runs it."""

    async def setup(rt: Runtime) -> None:
        notifier_service_pb2_grpc.add_NotifierServiceServicer_to_server(NotifierService(), rt.server)  # type: ignore[abstract]

    return ServiceSpec(name="notifier", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
