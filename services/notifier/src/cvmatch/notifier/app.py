"""Assembles the notifier service: servicer, consumers and delivery workers on the platform runtime."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from pathlib import Path

from cvmatch.api.notifier.v1 import notifier_service_pb2, notifier_service_pb2_grpc
from cvmatch.notifier import events
from cvmatch.notifier.config import Settings
from cvmatch.notifier.delivery import Dispatcher
from cvmatch.notifier.domain import SecretBox
from cvmatch.notifier.repository import Repository
from cvmatch.notifier.servicer import NotifierService
from cvmatch.notifier.webhooks import Resolver, WebhookClient, generate_secret
from cvmatch.platform.consumer import Consumer
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"].full_name


# How often finished deliveries past their retention are swept.
PURGE_INTERVAL_SECONDS = 3600.0


async def _purge_finished(repo: Repository, retention: dt.timedelta) -> None:
    while True:
        try:
            purged = await repo.purge_finished(retention)
            if purged:
                log.info("old deliveries purged", extra={"deliveries": purged})
        except Exception:
            log.warning("purging old deliveries failed", exc_info=True)
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The system trust store, plus the operator's extra CA bundle when one is configured."""
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=settings.ca_file)
    return context


def build(settings: Settings, *, resolver: Resolver | None = None, ssl_context: ssl.SSLContext | None = None,
          on_ready: list[Dispatcher] | None = None) -> ServiceSpec:
    """The service as the platform runs it.

    ``resolver`` and ``ssl_context`` replace the system DNS and trust store (tests: a resolver they
    control, a private CA); ``on_ready`` receives the dispatcher so a test can inspect it.
    """

    async def setup(rt: Runtime) -> None:
        repo = Repository(rt.require_pool(), SecretBox(settings.secrets_key))
        client = WebhookClient(
            policy=settings.egress, resolver=resolver, ssl_context=ssl_context or tls_context(settings),
            connect_timeout_s=settings.connect_timeout_seconds, total_timeout_s=settings.timeout_seconds)
        dispatcher = Dispatcher(
            repo, client, settings.schedule, workers=settings.workers,
            endpoint_concurrency=settings.endpoint_concurrency, lease_seconds=settings.lease_seconds,
            poll_seconds=settings.poll_seconds)
        servicer = NotifierService(repo, policy=settings.egress, resolver=resolver,
                                   default_overlap_seconds=settings.rotation_overlap_seconds, wake=dispatcher.wake)
        notifier_service_pb2_grpc.add_NotifierServiceServicer_to_server(servicer, rt.server)
        js, pool = rt.require_js(), rt.require_pool()
        for sub in events.subscriptions(repo, public_url=settings.public_url, new_secret=generate_secret,
                                        notify=dispatcher.wake):
            consumer = Consumer(js, pool, events.CONSUMER, sub, max_deliveries=settings.common.max_deliveries)
            rt.spawn(consumer.run(), f"consume-{sub.subject}")
        rt.spawn(dispatcher.run(), "webhook-dispatcher")
        rt.spawn(_purge_finished(repo, dt.timedelta(days=settings.delivery_retention_days)), "delivery-purge")
        if on_ready is not None:
            on_ready.append(dispatcher)
        if settings.egress.allow_http or settings.egress.allow_loopback:
            log.warning("webhook egress relaxed for local receivers",
                        extra={"allow_http": settings.egress.allow_http,
                               "allow_loopback": settings.egress.allow_loopback})

    return ServiceSpec(name="notifier", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
