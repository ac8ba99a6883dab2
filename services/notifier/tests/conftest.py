"""Notifier test fixtures: the real service in-process on a fresh database and the session's NATS, and
local HTTPS receivers on 127.0.0.1 with a certificate from a test CA (``trustme``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import nats
import pytest
import trustme
from google.protobuf.message import Message

from cvmatch.api.notifier.v1 import notifier_service_pb2 as pb
from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from cvmatch.notifier.app import MIGRATIONS, build
from cvmatch.notifier.config import Settings
from cvmatch.notifier.delivery import Dispatcher
from cvmatch.notifier.webhooks import Resolver, StaticResolver
from cvmatch.platform.db import migrate
from cvmatch.platform.events import cloudevent_headers
from cvmatch.platform.server import serve
from cvmatch.platform.settings import Env

HOST = "hooks.test"


def make_settings(database_url: str, nats_url: str, **extra: str) -> Settings:
    """Settings as the service would read them; loopback egress on, as only tests and make run set it."""
    return Settings.from_env(Env({
        "DATABASE_URL": database_url, "NATS_URL": nats_url, "CVMATCH_ENV": "test", "NOTIFIER_GRPC_PORT": "0",
        "NOTIFIER_ALLOW_LOOPBACK": "true", "NOTIFIER_RETRY_SCHEDULE": "0.2,0.4,0.8",
        "NOTIFIER_TIMEOUT_SECONDS": "2", "NOTIFIER_CONNECT_TIMEOUT_SECONDS": "1", "NOTIFIER_LEASE_SECONDS": "4",
        "NOTIFIER_POLL_SECONDS": "0.05", "NOTIFIER_WORKERS": "8", "DB_POOL_MAX": "12", "LOG_LEVEL": "WARNING",
        "HEALTH_CHECK_INTERVAL_SECONDS": "5", **extra}))


def new_account() -> int:
    """An account id no other test uses (events go through the session's shared NATS)."""
    return random.randint(1_000_000, 2_000_000_000)


# ------------------------------------------------------------------------------------------- receivers


@dataclass
class Request:
    """One webhook request as the receiver saw it."""

    target: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Respond = Callable[[int, Request], Awaitable[tuple[int, dict[str, str]]]]


async def ok(index: int, request: Request) -> tuple[int, dict[str, str]]:
    """Answer 200."""
    return 200, {}


@dataclass
class Receiver:
    """A tiny HTTPS/1.1 server; ``respond(index, request)`` returns the status and extra headers."""

    respond: Respond
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str = "/hook", host: str = HOST) -> str:
        return f"https://{host}:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(target, headers, body, time.monotonic())
            self.requests.append(request)
            status, extra = await self.respond(len(self.requests) - 1, request)
            head_out = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n"
            head_out += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(head_out.encode() + b"\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self.tasks.discard(task)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """Until ``count`` requests arrived; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests within {timeout}s"
            await asyncio.sleep(0.02)
        return self.requests


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The test CA the receivers' certificates come from."""
    return trustme.CA()


@pytest.fixture(scope="session")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    """A TLS context trusting the test CA (what the notifier uses in these tests)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def receiver_factory(ca: trustme.CA) -> AsyncIterator[Callable[[Respond], Awaitable[Receiver]]]:
    """Starts HTTPS receivers on 127.0.0.1 (certificate for hooks.test and 127.0.0.1)."""
    servers: list[tuple[asyncio.Server, Receiver]] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "127.0.0.1").configure_cert(context)

    async def start(respond: Respond = ok) -> Receiver:
        receiver = Receiver(respond)
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0, ssl=context)
        receiver.port = server.sockets[0].getsockname()[1]
        servers.append((server, receiver))
        return receiver

    yield start
    for server, receiver in servers:
        server.close()
        for task in list(receiver.tasks):
            task.cancel()
        await asyncio.gather(*receiver.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)


# ------------------------------------------------------------------------------------------- the service


@dataclass
class Running:
    """One in-process notifier."""

    stub: pb_grpc.NotifierServiceStub
    dispatcher: Dispatcher
    settings: Settings


@dataclass
class NotifierFactory:
    """Starts notifiers on one migrated database; all are stopped at teardown."""

    database_url: str
    nats_url: str
    client_ssl: ssl.SSLContext
    stops: list[tuple[asyncio.Event, asyncio.Task[None], grpc.aio.Channel]] = field(default_factory=list)

    async def start(self, *, resolver: Resolver | None = None, **env: str) -> Running:
        settings = make_settings(self.database_url, self.nats_url, **env)
        resolver = resolver or StaticResolver({HOST: ["127.0.0.1"]})
        ready, stop = asyncio.Event(), asyncio.Event()
        dispatchers: list[Dispatcher] = []
        spec = build(settings, resolver=resolver, ssl_context=self.client_ssl, on_ready=dispatchers)
        runtimes: list[Any] = []
        original = spec.setup

        async def setup(rt: Any) -> None:
            await original(rt)
            runtimes.append(rt)  # its port is known once serve() has bound it

        spec = type(spec)(name=spec.name, grpc_services=spec.grpc_services, setup=setup)
        task = asyncio.create_task(serve(settings.common, spec, ready=ready, stop=stop))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert waiter in done, "the notifier did not start"
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtimes[0].port}")
        self.stops.append((stop, task, channel))
        return Running(pb_grpc.NotifierServiceStub(channel), dispatchers[0], settings)

    async def close(self) -> None:
        for stop, task, channel in self.stops:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
            await channel.close()


@pytest.fixture
async def notifiers(database_url: str, nats_url: str, client_ssl: ssl.SSLContext) -> AsyncIterator[NotifierFactory]:
    """A factory of in-process notifiers on a fresh, migrated database."""
    settings = make_settings(database_url, nats_url)
    await migrate(settings.common, MIGRATIONS)
    factory = NotifierFactory(database_url, nats_url, client_ssl)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    """A JetStream context on the session's nats-server, for publishing the events the notifier consumes."""
    nc = await nats.connect(nats_url)
    try:
        yield nc
    finally:
        await nc.drain()


async def publish(nc: Any, subject: str, message: Message, event_id: str | None = None,
                  msg_id: str | None = None) -> str:
    """Publishes an event as the outbox relay would (CloudEvents headers, Nats-Msg-Id)."""
    eid = event_id or str(uuid.uuid4())
    headers = cloudevent_headers(eid, message.DESCRIPTOR.full_name, "cvmatch/test", dt.datetime.now(dt.UTC), subject)
    if msg_id is not None:
        headers["Nats-Msg-Id"] = msg_id
    await nc.jetstream().publish(subject, message.SerializeToString(), headers=headers, timeout=5.0)
    return eid


async def create_endpoint(stub: pb_grpc.NotifierServiceStub, account: int, url: str,
                          events: list[str]) -> pb.CreateEndpointResponse:
    """Registers an endpoint over gRPC."""
    resp: pb.CreateEndpointResponse = await stub.CreateEndpoint(
        pb.CreateEndpointRequest(account_id=account, url=url, events=events))
    return resp


async def deliveries(stub: pb_grpc.NotifierServiceStub, account: int, endpoint_id: str,
                     status: str = "") -> list[Any]:
    """The endpoint's delivery log."""
    resp: pb.ListDeliveriesResponse = await stub.ListDeliveries(
        pb.ListDeliveriesRequest(account_id=account, endpoint_id=endpoint_id, status=status))
    return list(resp.deliveries)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    """Polls ``check`` until it is true; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        await asyncio.sleep(0.05)
