"""Assembles the billing service: servicer and event consumers on the platform runtime."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

from cvmatch.api.billing.v1 import billing_service_pb2, billing_service_pb2_grpc
from cvmatch.billing import domain, events
from cvmatch.billing.config import Settings
from cvmatch.billing.repository import Repository
from cvmatch.billing.servicer import BillingService
from cvmatch.platform.consumer import Consumer
from cvmatch.platform.db import create_pool
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name

# Keys that stop calling leave their last minute of log rows behind; sweep them now and then.
RATE_LOG_SWEEP_SECONDS = 60.0


def repository(settings: Settings, rt: Runtime, hot_pool: asyncpg.Pool | None = None) -> Repository:
    """The repository on the runtime's pool, configured from settings."""
    return Repository(rt.require_pool(), pepper=settings.key_pepper, key_prefix=settings.key_prefix,
                      low_credit_threshold=settings.low_credit_threshold, hot_pool=hot_pool)


async def _sweep_rate_log(repo: Repository) -> None:
    while True:
        await asyncio.sleep(RATE_LOG_SWEEP_SECONDS)
        try:
            await repo.purge_rate_log()
        except Exception:
            log.warning("rate-limit log sweep failed", exc_info=True)


def build(settings: Settings) -> ServiceSpec:
    """The service as the platform runs it."""

    async def setup(rt: Runtime) -> None:
        # Every public request authenticates and counts against the limits: those statements get a pool
        # of their own that skips the session reset on release (they leave no session state), which saves
        # a database round trip per call and keeps the ledger's pool free for money.
        hot_pool = await create_pool(settings.common, reset_sessions=False)
        rt.on_close(hot_pool.close)
        repo = repository(settings, rt, hot_pool)
        billing_service_pb2_grpc.add_BillingServiceServicer_to_server(BillingService(repo), rt.server)
        js, pool = rt.require_js(), rt.require_pool()
        for sub in events.subscriptions(repo):
            consumer = Consumer(js, pool, events.CONSUMER, sub, max_deliveries=settings.common.max_deliveries)
            rt.spawn(consumer.run(), f"consume-{sub.subject}")
        rt.spawn(_sweep_rate_log(repo), "rate-log-sweep")
        log.info("billing ready", extra={"pepper_id": domain.pepper_fingerprint(settings.key_pepper),
                                         "environment": settings.environment})

    return ServiceSpec(name="billing", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
