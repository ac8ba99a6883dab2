"""Assembles the matcher service: servicer, consumers and background work on the platform runtime."""

from __future__ import annotations

from pathlib import Path

from cvmatch.api.matcher.v1 import matcher_service_pb2, matcher_service_pb2_grpc
from cvmatch.matcher.config import Settings
from cvmatch.matcher.servicer import MatcherService
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = matcher_service_pb2.DESCRIPTOR.services_by_name["MatcherService"].full_name


def build(settings: Settings) -> ServiceSpec:
    """The service as the platform runs it."""

    async def setup(rt: Runtime) -> None:
        matcher_service_pb2_grpc.add_MatcherServiceServicer_to_server(MatcherService(), rt.server)  # type: ignore[abstract]

    return ServiceSpec(name="matcher", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
