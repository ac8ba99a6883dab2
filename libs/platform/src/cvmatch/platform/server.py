"""The bootstrap every service runs: pool, NATS, gRPC server with health and reflection, clean stop.

`serve(settings, spec)` opens what the service needs, lets the service register its servicers and
background tasks, marks health SERVING, watches the database and NATS (NOT_SERVING while either is
down), and on SIGTERM/SIGINT: health off, stop background tasks, stop the server with grace, drain
NATS, close the pool, in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from cvmatch.platform.db import create_pool
from cvmatch.platform.events import ensure_streams
from cvmatch.platform.grpc_client import MAX_MESSAGE_BYTES
from cvmatch.platform.interceptors import ErrorInterceptor
from cvmatch.platform.logging import configure_logging
from cvmatch.platform.outbox import OutboxRelay
from cvmatch.platform.settings import CommonSettings

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Runtime:
    """What a running service holds; handed to the service's setup function."""

    settings: CommonSettings
    server: grpc.aio.Server
    health: HealthServicer
    pool: asyncpg.Pool | None = None
    nats: NatsClient | None = None
    js: JetStreamContext | None = None
    port: int = 0
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Runs a background task for the life of the service; a crash is logged, not swallowed silently.

        Long-running loops (relay, consumers) handle their own transient errors; reaching here means a bug.
        """

        async def supervised() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task crashed", extra={"task": name})

        task = asyncio.create_task(supervised(), name=name)
        self._tasks.append(task)
        return task

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Registers something to close after the server stops (e.g. outgoing channels)."""
        self._closers.append(closer)

    def require_pool(self) -> asyncpg.Pool:
        assert self.pool is not None, "service was started without a database"
        return self.pool

    def require_js(self) -> JetStreamContext:
        assert self.js is not None, "service was started without NATS"
        return self.js


@dataclass(frozen=True)
class ServiceSpec:
    """How to assemble one service."""

    name: str
    # Fully qualified gRPC service names, for health and reflection.
    grpc_services: Sequence[str]
    setup: Callable[[Runtime], Awaitable[None]]
    needs_database: bool = True
    needs_nats: bool = True
    relay_outbox: bool = True


async def _connect_nats(url: str, name: str) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": repr(exc)})

    return await nats.connect(
        url,
        name=f"cvmatch-{name}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        error_cb=on_error,
        allow_reconnect=True,
    )


async def _connect_nats_retrying(url: str, name: str, timeout: float = 30.0) -> NatsClient:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await _connect_nats(url, name)
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("nats not ready, retrying")
            await asyncio.sleep(0.5)


async def _set_all(health: HealthServicer, names: Sequence[str], status: int) -> None:
    for n in ("", *names):
        await health.set(n, status)


async def _watch(rt: Runtime, names: Sequence[str], interval: float) -> None:
    """Health follows the database and NATS, so Envoy and Kubernetes stop routing to a blind replica."""
    current: int | None = None
    while True:
        ok = True
        if rt.pool is not None:
            try:
                async with asyncio.timeout(max(1.0, interval)):
                    async with rt.pool.acquire() as conn:
                        await conn.fetchval("SELECT 1")
            except Exception:
                ok = False
        if rt.nats is not None and not rt.nats.is_connected:
            ok = False
        status = SERVING if ok else NOT_SERVING
        if status != current:
            await _set_all(rt.health, names, status)
            if current is not None:
                log.warning("health changed", extra={"serving": ok})
            current = status
        await asyncio.sleep(interval)


async def serve(settings: CommonSettings, spec: ServiceSpec, *, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Runs the service until SIGTERM/SIGINT (or `stop` is set)."""
    configure_logging(spec.name, settings.log_level)
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health = HealthServicer()
    rt = Runtime(settings=settings, server=server, health=health)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if spec.needs_database:
            rt.pool = await create_pool(settings)
        if spec.needs_nats:
            rt.nats = await _connect_nats_retrying(settings.nats_url, spec.name)
            rt.js = rt.nats.jetstream()
            await ensure_streams(rt.js)
        await spec.setup(rt)
        if spec.relay_outbox and rt.pool is not None and rt.js is not None:
            relay = OutboxRelay(rt.pool, rt.js, source=f"cvmatch/{spec.name}",
                                poll_seconds=settings.outbox_poll_seconds)
            rt.spawn(relay.run(), "outbox-relay")
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            (*spec.grpc_services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        rt.port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
        await server.start()
        await _set_all(health, spec.grpc_services, SERVING)
        rt.spawn(_watch(rt, spec.grpc_services, settings.health_check_interval_seconds), "health-watch")
        log.info("service started", extra={"grpc_port": rt.port, "services": list(spec.grpc_services)})
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("shutting down")
    finally:
        await _shutdown(rt, settings.shutdown_grace_seconds)


async def _shutdown(rt: Runtime, grace: float) -> None:
    with contextlib.suppress(Exception):
        await rt.health.enter_graceful_shutdown()
    for task in rt._tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*rt._tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await rt.server.stop(grace)
    for closer in reversed(rt._closers):
        with contextlib.suppress(Exception):
            await closer()
    if rt.nats is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(rt.nats.drain(), 5.0)
    if rt.pool is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(rt.pool.close(), 5.0)
    log.info("stopped")
