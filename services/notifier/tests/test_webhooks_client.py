"""The sender against real local HTTPS receivers (asyncio servers with a trustme certificate on
127.0.0.1, reached as ``hooks.test`` through a static resolver and ``allow_loopback``)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from cvmatch.notifier.webhooks import (
    AttemptResult,
    CallableResolver,
    EgressPolicy,
    Outcome,
    RetrySchedule,
    StaticResolver,
    WebhookClient,
    WebhookEvent,
    batch_event,
    check_destination,
    generate_secret,
    signature_headers,
    verify,
)
from cvmatch.notifier.webhooks.client import AttemptError

HOST = "hooks.test"
LOCAL = EgressPolicy(allow_loopback=True)


# ------------------------------------------------------------------------------------------- receivers


@dataclass
class Request:
    target: str
    headers: dict[str, str]
    body: bytes
    at: float


Respond = Callable[[int, Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server; ``respond(index, request, writer)`` writes each raw response."""

    respond: Respond
    silent: bool = False  # accept connections and never say a byte (stalls a TLS handshake)
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    sni: list[str | None] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            if self.silent:
                await asyncio.sleep(10)
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
            await self.respond(len(self.requests) - 1, request, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # teardown cancels hanging handlers; asyncio would log a cancelled handler as an error
        finally:
            writer.transport.abort()


def raw(status: int, body: bytes = b"", extra: str = "") -> Respond:
    async def respond(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)

    return respond


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def serve(ca: trustme.CA) -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    servers: list[tuple[asyncio.Server, Receiver]] = []

    async def start(
        respond: Respond, *, tls: bool = True, names: tuple[str, ...] = (HOST,), silent: bool = False
    ) -> Receiver:
        receiver = Receiver(respond, silent=silent)
        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(*names).configure_cert(context)
            context.sni_callback = lambda obj, name, ctx: receiver.sni.append(name)
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0, ssl=context)
        receiver.port = server.sockets[0].getsockname()[1]
        servers.append((server, receiver))
        return receiver

    yield start
    for server, receiver in servers:
        server.close()
        for task in receiver.tasks:
            task.cancel()
        await asyncio.gather(*receiver.tasks, return_exceptions=True)
        await server.wait_closed()


def make_client(client_ssl: ssl.SSLContext, **kwargs: object) -> WebhookClient:
    options: dict[str, object] = {
        "policy": LOCAL,
        "resolver": StaticResolver({HOST: ["127.0.0.1"], "other.test": ["127.0.0.1"]}),
        "ssl_context": client_ssl,
        "connect_timeout_s": 2.0,
        "total_timeout_s": 3.0,
    }
    options.update(kwargs)
    return WebhookClient(**options)  # type: ignore[arg-type]


def event() -> WebhookEvent:
    return batch_event(
        "batch.completed", batch_job_id="bj_1", status="completed", total_candidates=3, processed_candidates=3
    )


# ------------------------------------------------------------------------------------------- delivery


async def deliver(
    client: WebhookClient, url: str, evt: WebhookEvent, secrets: list[str], schedule: RetrySchedule
) -> tuple[Outcome, list[AttemptResult]]:
    """What the service's worker does, in memory: sign per attempt, send, follow the schedule."""
    results: list[AttemptResult] = []
    attempt = 1
    while True:
        headers = signature_headers(evt.id, int(time.time()), evt.body, secrets)
        results.append(await client.send(url, evt.body, headers))
        decision = schedule.decide(attempt, results[-1])
        if decision.outcome is not Outcome.RETRY:
            return decision.outcome, results
        assert decision.delay_s is not None
        await asyncio.sleep(decision.delay_s)
        attempt += 1


async def test_delivery_succeeds_on_attempt_n_plus_1_following_the_schedule(serve, client_ssl) -> None:
    failures = 3

    async def respond(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        status = 503 if index < failures else 204
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())

    receiver = await serve(respond)
    secret = generate_secret()
    schedule = RetrySchedule.of([0.05, 0.1, 0.2, 0.4, 0.8])
    evt = event()
    url = f"https://{HOST}:{receiver.port}/hooks/cvmatch?src=test"

    outcome, results = await deliver(make_client(client_ssl), url, evt, [secret], schedule)

    assert outcome is Outcome.DELIVERED
    assert [r.status_code for r in results] == [503, 503, 503, 204]
    assert len(receiver.requests) == failures + 1
    assert {r.headers["webhook-id"] for r in receiver.requests} == {evt.id}
    for request in receiver.requests:
        assert request.target == "/hooks/cvmatch?src=test"
        assert request.headers["host"] == f"{HOST}:{receiver.port}"
        assert request.body == evt.body
        verify(request.body, request.headers, [secret])
    assert receiver.sni == [HOST] * (failures + 1)  # SNI is the original name, not 127.0.0.1
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    for gap, planned in zip(gaps, schedule.delays_s, strict=False):
        assert planned <= gap < planned + 0.5


async def test_exhausted_schedule_fails_after_max_attempts(serve, client_ssl) -> None:
    receiver = await serve(raw(500))
    schedule = RetrySchedule.of([0.01] * 5)
    outcome, results = await deliver(
        make_client(client_ssl), f"https://{HOST}:{receiver.port}/", event(), [generate_secret()], schedule
    )
    assert outcome is Outcome.FAILED
    assert len(results) == len(receiver.requests) == schedule.max_attempts == 6


async def test_gone_stops_and_disables(serve, client_ssl) -> None:
    receiver = await serve(raw(410))
    outcome, results = await deliver(
        make_client(client_ssl),
        f"https://{HOST}:{receiver.port}/",
        event(),
        [generate_secret()],
        RetrySchedule(),
    )
    assert outcome is Outcome.ENDPOINT_GONE and results[0].gone
    assert len(receiver.requests) == 1


async def test_retry_after_is_reported(serve, client_ssl) -> None:
    receiver = await serve(raw(429, extra="Retry-After: 120\r\n"))
    result = await make_client(client_ssl).send(f"https://{HOST}:{receiver.port}/", b"{}", {})
    assert (result.status_code, result.retry_after_s) == (429, 120.0)
    decision = RetrySchedule(retry_after_cap_s=30).decide(1, result)
    assert decision.delay_s == 30

    dated = await serve(raw(503, extra="Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"))
    result = await make_client(client_ssl).send(f"https://{HOST}:{dated.port}/", b"{}", {})
    assert (result.status_code, result.retry_after_s) == (503, 0.0)  # a date in the past: now


async def test_redirect_to_a_private_address_is_not_followed(serve, client_ssl) -> None:
    target = await serve(raw(200))
    redirect = await serve(raw(302, extra=f"Location: https://{HOST}:{target.port}/internal\r\n"))
    metadata = await serve(raw(307, extra="Location: http://169.254.169.254/latest/meta-data/\r\n"))
    client = make_client(client_ssl)
    for receiver in (redirect, metadata):
        result = await client.send(f"https://{HOST}:{receiver.port}/", b"{}", {})
        assert result.status_code in (302, 307)
        assert not result.ok and result.error_code == AttemptError.REDIRECT_NOT_FOLLOWED
        assert len(receiver.requests) == 1
    assert target.connections == 0
    assert RetrySchedule().decide(1, result).outcome is Outcome.RETRY


async def test_slow_receiver_hits_the_total_timeout(serve, client_ssl) -> None:
    async def slow(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    receiver = await serve(slow)
    started = time.monotonic()
    result = await make_client(client_ssl, total_timeout_s=0.3).send(
        f"https://{HOST}:{receiver.port}/", b"{}", {}
    )
    assert result.status_code is None and result.error_code == AttemptError.TIMEOUT
    assert time.monotonic() - started < 2 and 250 <= result.latency_ms < 2000
    assert len(receiver.requests) == 1


async def test_a_stalled_tls_handshake_hits_the_connect_timeout(serve, client_ssl) -> None:
    async def silent(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        raise AssertionError("no request should arrive")

    receiver = await serve(silent, tls=False, silent=True)  # plain TCP: never answers the ClientHello
    started = time.monotonic()
    result = await make_client(client_ssl, connect_timeout_s=0.2).send(
        f"https://{HOST}:{receiver.port}/", b"{}", {}
    )
    assert result.error_code == AttemptError.CONNECT_TIMEOUT
    assert time.monotonic() - started < 2


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        writer.transport.abort()


async def test_slow_body_after_2xx_still_counts_as_delivered(serve, client_ssl) -> None:
    async def trickle(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(10)

    receiver = await serve(trickle)
    result = await make_client(client_ssl, total_timeout_s=0.3).send(
        f"https://{HOST}:{receiver.port}/", b"{}", {}
    )
    assert result.ok and result.error is None
    assert result.response_body == b"partial" and not result.truncated


@pytest.mark.parametrize("chunked", [False, True])
async def test_huge_response_is_cut_at_64_kib(serve, client_ssl, chunked: bool) -> None:
    async def flood(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        if chunked:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
        block = b"x" * 65536
        for _ in range(1600):  # 100 MiB if anyone read it all
            writer.write(b"10000\r\n" + block + b"\r\n" if chunked else block)
            await writer.drain()

    receiver = await serve(flood)
    started = time.monotonic()
    result = await make_client(client_ssl).send(f"https://{HOST}:{receiver.port}/", b"{}", {})
    assert result.ok and result.truncated
    assert 60_000 < len(result.response_body) < 65536
    assert time.monotonic() - started < 2


async def test_huge_headers_are_a_protocol_error(serve, client_ssl) -> None:
    async def respond(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"y" * 100_000 + b"\r\n\r\n")

    receiver = await serve(respond)
    result = await make_client(client_ssl).send(f"https://{HOST}:{receiver.port}/", b"{}", {})
    assert result.status_code is None and result.error_code == AttemptError.PROTOCOL_ERROR


async def test_chunked_and_interim_responses(serve, client_ssl) -> None:
    async def respond(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
        )

    receiver = await serve(respond)
    result = await make_client(client_ssl).send(f"https://{HOST}:{receiver.port}/", b"{}", {})
    assert result.status_code == 202 and result.response_body == b"abcdefg" and not result.truncated
    assert result.address == "127.0.0.1"


async def test_garbage_response_is_a_protocol_error(serve, client_ssl) -> None:
    async def respond(index: int, request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    receiver = await serve(respond)
    result = await make_client(client_ssl).send(f"https://{HOST}:{receiver.port}/", b"{}", {})
    assert result.error_code == AttemptError.PROTOCOL_ERROR

    closed = await serve(lambda i, r, w: asyncio.sleep(0))
    result = await make_client(client_ssl).send(f"https://{HOST}:{closed.port}/", b"{}", {})
    assert result.status_code is None and result.error_code == AttemptError.PROTOCOL_ERROR


async def test_certificate_is_verified_against_the_original_host(serve, client_ssl) -> None:
    receiver = await serve(raw(200))  # certificate for hooks.test only
    result = await make_client(client_ssl).send(f"https://other.test:{receiver.port}/", b"{}", {})
    assert result.error_code == AttemptError.TLS_ERROR
    assert result.error is not None and "mismatch" in result.error
    assert receiver.requests == []

    untrusted = await make_client(ssl.create_default_context()).send(
        f"https://{HOST}:{receiver.port}/", b"{}", {}
    )
    assert untrusted.error_code == AttemptError.TLS_ERROR


async def test_connection_refused(client_ssl) -> None:
    probe = await asyncio.start_server(_hang, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    result = await make_client(client_ssl).send(f"https://{HOST}:{port}/", b"{}", {})
    assert result.error_code == AttemptError.CONNECT_FAILED and result.status_code is None


async def test_plain_http_only_with_the_operator_setting(serve, client_ssl) -> None:
    receiver = await serve(raw(200), tls=False)
    url = f"http://{HOST}:{receiver.port}/h"
    refused = await make_client(client_ssl).send(url, b"{}", {})
    assert refused.error_code == "INSECURE_WEBHOOK_URL" and receiver.connections == 0
    allowed = await make_client(client_ssl, policy=EgressPolicy(allow_http=True, allow_loopback=True)).send(
        url, b"{}", {}
    )
    assert allowed.ok and receiver.requests[0].target == "/h"


async def test_connects_to_the_checked_address_without_resolving_again(serve, client_ssl) -> None:
    receiver = await serve(raw(200))
    resolver = StaticResolver({HOST: ["127.0.0.1"]})
    client = make_client(client_ssl, resolver=resolver)
    destination = await check_destination(f"https://{HOST}:{receiver.port}/", LOCAL, resolver)
    result = await client.post(destination, b"{}", {"X-Extra": "1"})
    # hooks.test exists only in the static table: reaching the receiver proves no system lookup.
    assert result.ok and resolver.calls == [HOST]
    assert receiver.requests[0].headers["x-extra"] == "1"
    assert receiver.requests[0].headers["content-type"] == "application/json"
    await client.send(f"https://{HOST}:{receiver.port}/", b"{}", {})
    assert resolver.calls == [HOST, HOST]  # send() re-checks once per attempt


def test_reserved_and_unsafe_headers_are_refused(client_ssl) -> None:
    client = make_client(client_ssl)
    from cvmatch.notifier.webhooks import CheckedDestination

    destination = CheckedDestination("https://hooks.test/", "https", HOST, 443, (), "/")
    for headers in ({"Host": "evil"}, {"Content-Length": "1"}, {"X-A": "1\r\nX-B: 2"}, {"Bad Name": "1"}):
        with pytest.raises(ValueError):
            client._build_request(destination, b"", headers)


# ------------------------------------------------------------------------- refusals at send time


SEND_TIME_REFUSED = [
    "https://127.0.0.1:{port}/",
    "https://127.1:{port}/",
    "https://0x7f000001:{port}/",
    "https://2130706433:{port}/",
    "https://0177.0.0.1:{port}/",
    "https://0.0.0.0:{port}/",
    "https://0:{port}/",
    "https://[::1]:{port}/",
    "https://[::ffff:127.0.0.1]:{port}/",
    "https://[::ffff:7f00:1]:{port}/",
    "https://169.254.169.254:{port}/",
    "https://100.64.0.1:{port}/",
    "https://10.0.0.1:{port}/",
    "https://192.168.1.1:{port}/",
    "https://[fd00::1]:{port}/",
    "https://[64:ff9b::a00:1]:{port}/",
    "https://[2002:a00:1::1]:{port}/",
    "https://224.0.0.1:{port}/",
    "https://localhost:{port}/",
    "https://private.test:{port}/",
]


async def test_forbidden_destinations_are_refused_at_send_time_and_nothing_is_sent(serve, client_ssl) -> None:
    # A real receiver listens on 127.0.0.1 (and 0.0.0.0 would reach it): none of these may connect.
    receiver = await serve(raw(200), names=(HOST, "localhost", "127.0.0.1"))
    client = make_client(
        client_ssl,
        policy=EgressPolicy(),
        resolver=StaticResolver({"private.test": ["10.9.8.7"], "localhost": ["127.0.0.1", "::1"]}),
    )
    for template in SEND_TIME_REFUSED:
        result = await client.send(template.format(port=receiver.port), b"{}", {})
        assert result.error_code == "PRIVATE_WEBHOOK_URL", template
        assert result.status_code is None and not result.ok
    assert receiver.connections == 0


async def test_dns_rebinding_between_registration_and_delivery(serve, client_ssl) -> None:
    receiver = await serve(raw(200))
    # Registration sees a public address; every delivery-time resolution answers the receiver on
    # 127.0.0.1. Even though 127.0.0.1 is the only thing listening, nothing connects.
    resolver = CallableResolver(lambda host, call: ["93.184.216.34"] if call == 1 else ["127.0.0.1"])
    url = f"https://rebind.test:{receiver.port}/"
    await check_destination(url, EgressPolicy(), resolver)
    client = make_client(client_ssl, policy=EgressPolicy(), resolver=resolver)
    outcome, results = await deliver(
        client, url, event(), [generate_secret()], RetrySchedule.of([0.01, 0.01])
    )
    assert outcome is Outcome.FAILED
    assert [r.error_code for r in results] == ["PRIVATE_WEBHOOK_URL"] * 3
    assert receiver.connections == 0 and resolver.calls == 4

    # With loopback allowed (local runs), rebinding to the metadata service is still refused.
    metadata = CallableResolver(lambda host, call: ["127.0.0.1"] if call == 1 else ["169.254.169.254"])
    await check_destination(url, LOCAL, metadata)
    result = await make_client(client_ssl, resolver=metadata).send(url, b"{}", {})
    assert result.error_code == "PRIVATE_WEBHOOK_URL"


async def test_unresolvable_at_send_time(client_ssl) -> None:
    result = await make_client(client_ssl).send("https://gone.test/", b"{}", {})
    assert result.error_code == "UNRESOLVABLE_WEBHOOK_HOST" and result.status_code is None
