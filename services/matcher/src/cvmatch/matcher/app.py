"""Assembles the matcher service: engine, servicer, event consumers and the ingest client on the runtime."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cvmatch.api.matcher.v1 import matcher_service_pb2, matcher_service_pb2_grpc
from cvmatch.matcher import events
from cvmatch.matcher.config import FAILURE_CONCURRENCY, Settings
from cvmatch.matcher.domain import JobCache, Scorer
from cvmatch.matcher.engine import MatchEngine
from cvmatch.matcher.ingest_client import IngestClient
from cvmatch.matcher.matching import Matcher
from cvmatch.matcher.repository import Repository
from cvmatch.matcher.servicer import MatcherService
from cvmatch.platform.consumer import Consumer, Subscription
from cvmatch.platform.server import Runtime, ServiceSpec
from cvmatch.platform.settings import CommonSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
SERVICE_NAME = matcher_service_pb2.DESCRIPTOR.services_by_name["MatcherService"].full_name


def subscriptions(matcher: Matcher) -> list[Subscription[Any]]:
    """The consumers the matcher runs, bound to its use cases."""
    return [
        Subscription(
            events.CANDIDATE_INGESTED, events.CONSUMES[events.CANDIDATE_INGESTED], matcher.on_candidate_ingested
        ),
        Subscription(
            events.INGEST_CANDIDATE_FAILED, events.CONSUMES[events.INGEST_CANDIDATE_FAILED], matcher.on_ingest_failed
        ),
    ]


def build(settings: Settings) -> ServiceSpec:
    """The service as the platform runs it."""

    async def setup(rt: Runtime) -> None:
        executor = ThreadPoolExecutor(max_workers=settings.score_workers, thread_name_prefix="matcher-score")

        async def close_executor() -> None:
            executor.shutdown(wait=False, cancel_futures=True)

        rt.on_close(close_executor)
        # About a second of taxonomy and pipeline loading: off the loop, once per process (MatchEngine caches).
        engine = await asyncio.get_running_loop().run_in_executor(executor, MatchEngine.load)
        ingest = IngestClient(settings.ingest_addr, settings.ingest_timeout_seconds)
        rt.on_close(ingest.close)
        matcher = Matcher(
            Scorer(engine, executor),
            Repository(rt.require_pool()),
            JobCache(settings.job_cache_size),
            ingest,
            sync_max_candidates=settings.sync_max_candidates,
        )
        matcher_service_pb2_grpc.add_MatcherServiceServicer_to_server(MatcherService(matcher), rt.server)
        js, pool = rt.require_js(), rt.require_pool()
        for sub in subscriptions(matcher):
            # Scoring is the slow path; recording ingest's failures is one insert.
            n = settings.consumer_concurrency if sub.subject == events.CANDIDATE_INGESTED else FAILURE_CONCURRENCY
            # Fetch no more than can run: fetched messages wait on their ack deadline.
            consumer = Consumer(
                js,
                pool,
                events.CONSUMER,
                sub,
                max_deliveries=settings.common.max_deliveries,
                concurrency=n,
                batch_size=n,
            )
            rt.spawn(consumer.run(), f"consume-{sub.subject}")
        log.info(
            "matcher ready",
            extra={
                "engine_version": engine.version,
                "score_workers": settings.score_workers,
                "concurrency": settings.consumer_concurrency,
            },
        )

    return ServiceSpec(name="matcher", grpc_services=[SERVICE_NAME], setup=setup)


def load() -> tuple[CommonSettings, ServiceSpec]:
    """Reads settings once and builds the spec."""
    settings = Settings.from_env()
    return settings.common, build(settings)
