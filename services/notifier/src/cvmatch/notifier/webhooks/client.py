"""One webhook delivery attempt: a minimal HTTP/1.1 POST on asyncio streams.

Why not httpx / aiohttp: they resolve the host name themselves, so the address we checked would not be
the address we connect to (DNS rebinding between check and connect). Here the connection goes to one of
:attr:`CheckedDestination.addresses` while TLS verifies the certificate against, and SNI and ``Host``
carry, the original host name. Redirects are never followed (a 3xx is a failed attempt: following one
would let a public endpoint bounce us to a private address). The response is read only far enough to
get the status and headers and at most ``max_response_bytes`` in total; a receiver that is slow, huge
or hostile costs at most the timeouts and 64 KiB.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cvmatch.notifier.webhooks.egress import (
    CheckedDestination,
    EgressPolicy,
    WebhookDestinationError,
    check_destination,
)
from cvmatch.notifier.webhooks.resolver import IPAddress, Resolver

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AttemptError",
    "AttemptResult",
    "WebhookClient",
]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_USER_AGENT = "cvmatch-webhooks/0.1"
# Headers the client owns: letting a caller set them could desynchronise framing (request smuggling
# towards the receiver's proxy) or point Host away from the checked name.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?$")


class AttemptError(StrEnum):
    """Stable codes for why an attempt got no usable HTTP status (``AttemptResult.error_code``).

    A refused destination uses the egress error's reason instead (``PRIVATE_WEBHOOK_URL`` ...).
    """

    CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
    TIMEOUT = "TIMEOUT"
    CONNECT_FAILED = "CONNECT_FAILED"
    TLS_ERROR = "TLS_ERROR"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    CONNECTION_CLOSED = "CONNECTION_CLOSED"
    REDIRECT_NOT_FOLLOWED = "REDIRECT_NOT_FOLLOWED"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt produced.

    ``status_code`` is None when no response status was read (``error`` says why). ``retry_after_s``
    is the receiver's ``Retry-After`` on a 429 or 503, in seconds, uncapped (the schedule caps it).
    ``gone`` is a 410: the receiver asks us to disable the endpoint. ``response_body`` holds at most
    what fitted in the read budget after the headers; ``truncated`` says the budget cut it.
    """

    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after_s: float | None
    gone: bool
    error_code: str | None = None
    response_body: bytes = b""
    truncated: bool = False
    address: str | None = None

    @property
    def ok(self) -> bool:
        """Delivered: the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


class _ProtocolError(Exception):
    pass


class _BoundedReader:
    """A stream reader that never pulls more than ``budget`` bytes off the connection in total."""

    def __init__(self, reader: asyncio.StreamReader, budget: int) -> None:
        self._reader = reader
        self.buffer = bytearray()
        self.remaining = budget
        self.eof = False

    async def _fill(self) -> bool:
        if self.eof or self.remaining <= 0:
            return False
        data = await self._reader.read(min(self.remaining, 16 * 1024))
        if not data:
            self.eof = True
            return False
        self.remaining -= len(data)
        self.buffer += data
        return True

    async def read_until(self, separator: bytes) -> bytes | None:
        """Bytes up to and including ``separator``; None at EOF or when the budget is spent first."""
        start = 0
        while True:
            index = self.buffer.find(separator, start)
            if index != -1:
                end = index + len(separator)
                out = bytes(self.buffer[:end])
                del self.buffer[:end]
                return out
            start = max(0, len(self.buffer) - len(separator) + 1)
            if not await self._fill():
                return None

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer at EOF or when the budget is spent."""
        while len(self.buffer) < n and await self._fill():
            pass
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def read_to_end(self) -> bytes:
        """Everything until EOF or the end of the budget."""
        while await self._fill():
            pass
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head[:-4].split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    if match is None:
        raise _ProtocolError("the response does not start with an HTTP/1.x status line")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        if raw[:1] in (b" ", b"\t"):
            continue  # obsolete line folding: nothing we read uses folded values
        name, colon, value = raw.partition(b":")
        if not colon or not name:
            raise _ProtocolError("malformed response header line")
        key = name.decode("latin-1").strip().lower()
        text = value.decode("latin-1").strip()
        # Repeated headers are joined as RFC 9110 allows for list-valued fields.
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(match.group(1)), headers


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when unparseable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        return None
    return max(0.0, when.timestamp() - now)


async def _read_body(reader: _BoundedReader, headers: Mapping[str, str], body: bytearray) -> bool:
    """Read the body into ``body`` (as far as the budget allows); True when it ended cleanly."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.read_until(b"\r\n")
            if line is None:
                return False
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return False
            if size == 0:
                return True  # trailers, if any, are not needed
            chunk = await reader.read(size)
            body += chunk
            if len(chunk) < size or len(await reader.read(2)) < 2:
                return False
    length_text = headers.get("content-length")
    if length_text is not None and length_text.isdigit():
        length = int(length_text)
        chunk = await reader.read(length)
        body += chunk
        return len(chunk) == length
    body += await reader.read_to_end()
    return reader.eof


class WebhookClient:
    """Sends single webhook attempts under an egress policy.

    ``ssl_context`` defaults to the system trust store (``ssl.create_default_context()``); tests inject a
    context that trusts their own CA. ``resolver`` defaults to :class:`SystemResolver`.
    """

    def __init__(
        self,
        *,
        policy: EgressPolicy | None = None,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout_s: float = 5.0,
        total_timeout_s: float = 15.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        if connect_timeout_s <= 0 or total_timeout_s <= 0 or max_response_bytes <= 0:
            raise ValueError("timeouts and the response budget must be positive")
        self.policy = policy or EgressPolicy()
        self.resolver = resolver
        self._ssl_context = ssl_context
        self.connect_timeout_s = connect_timeout_s
        self.total_timeout_s = total_timeout_s
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context; the default one is built on first use (loading the trust store is slow)."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """Check ``url`` against the policy (resolving it now) and, if allowed, POST ``body`` to it.

        This is the call for every delivery attempt: a refused destination is a failed attempt whose
        ``error_code`` is the egress reason (``PRIVATE_WEBHOOK_URL``...), and nothing is sent.
        """
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.total_timeout_s):
                destination = await check_destination(url, self.policy, self.resolver)
        except WebhookDestinationError as exc:
            return AttemptResult(
                status_code=None,
                latency_ms=_elapsed_ms(started),
                error=exc.message,
                retry_after_s=None,
                gone=False,
                error_code=exc.reason,
            )
        except TimeoutError:
            return _failure(started, AttemptError.TIMEOUT, "resolving the webhook host timed out")
        remaining = self.total_timeout_s - (time.monotonic() - started)
        return await self.post(destination, body, headers, started=started, budget_s=remaining)

    async def post(
        self,
        destination: CheckedDestination,
        body: bytes,
        headers: Mapping[str, str],
        *,
        started: float | None = None,
        budget_s: float | None = None,
    ) -> AttemptResult:
        """POST ``body`` to an already checked destination (connecting only to its addresses).

        ``started`` / ``budget_s`` let :meth:`send` count the resolution in the latency and the total
        timeout. Raises ValueError for a header that is malformed or owned by the client (a bug in the
        caller, not a delivery failure); every network outcome is an :class:`AttemptResult`.
        """
        request = self._build_request(destination, body, headers)
        started = time.monotonic() if started is None else started
        budget_s = self.total_timeout_s if budget_s is None else budget_s
        if budget_s <= 0:
            return _failure(started, AttemptError.TIMEOUT, "no time left for the attempt")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        writer: asyncio.StreamWriter | None = None
        address: IPAddress | None = None
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    reader, writer, address = await self._connect(destination)
                    status, response_headers, bounded = await self._exchange(reader, writer, request)
            except TimeoutError:
                return _failure(started, AttemptError.TIMEOUT, "the receiver did not answer in time", address)
            except _ConnectFailed as exc:
                return _failure(started, exc.code, exc.message, address)
            except ssl.SSLError as exc:
                # verify_message says why a certificate was refused ("Hostname mismatch, ...").
                detail = getattr(exc, "verify_message", None) or exc.reason or type(exc).__name__
                return _failure(started, AttemptError.TLS_ERROR, f"TLS error: {detail}", address)
            except _ProtocolError as exc:
                return _failure(started, AttemptError.PROTOCOL_ERROR, str(exc), address)
            except (OSError, asyncio.IncompleteReadError) as exc:
                return _failure(
                    started,
                    AttemptError.CONNECTION_CLOSED,
                    f"connection error: {type(exc).__name__}",
                    address,
                )
            latency = _elapsed_ms(started)

            # The status is what counts; the body is read best-effort within the same deadline so the
            # delivery log can show what the receiver said, and a slow body does not fail a 2xx.
            body_buffer = bytearray()
            complete = False
            try:
                async with asyncio.timeout_at(deadline):
                    complete = await _read_body(bounded, response_headers, body_buffer)
            except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
                complete = False
                if "chunked" not in response_headers.get("transfer-encoding", "").lower():
                    # Keep what arrived of a length-delimited or close-delimited body (chunk framing
                    # would be mixed into a chunked one, so that is left out).
                    body_buffer += bounded.buffer[: self.max_response_bytes - len(body_buffer)]
        finally:
            if writer is not None:
                # abort(): no close_notify round trip that a hostile peer could stall.
                writer.transport.abort()

        retry_after = None
        if status in (429, 503):
            retry_after = _retry_after_seconds(response_headers.get("retry-after"), time.time())
        error: str | None = None
        error_code: str | None = None
        if 300 <= status < 400:
            error, error_code = "redirects are not followed", AttemptError.REDIRECT_NOT_FOLLOWED
        return AttemptResult(
            status_code=status,
            latency_ms=latency,
            error=error,
            retry_after_s=retry_after,
            gone=status == 410,
            error_code=error_code,
            response_body=bytes(body_buffer),
            truncated=not complete and bounded.remaining <= 0,
            address=str(address),
        )

    def _build_request(
        self, destination: CheckedDestination, body: bytes, headers: Mapping[str, str]
    ) -> bytes:
        fields: dict[str, str] = {
            "Host": destination.host_header,
            "User-Agent": self.user_agent,
            "Content-Type": "application/json",
            "Accept": "*/*",
            "Content-Length": str(len(body)),
            "Connection": "close",
        }
        for name, value in headers.items():
            # A CR or LF in a value would let the caller (or data it got from a user) inject headers.
            if not _TOKEN.match(name) or not value.isascii() or any(c in value for c in "\r\n\0"):
                raise ValueError(f"invalid header {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"the header {name!r} is set by the client")
            if name.lower() == "content-type":
                fields.pop("Content-Type", None)
            fields[name] = value
        head = f"POST {destination.path_qs} HTTP/1.1\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        return head.encode("latin-1") + b"\r\n" + body

    async def _connect(
        self, destination: CheckedDestination
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, IPAddress]:
        use_tls = destination.scheme == "https"
        failures: list[str] = []
        timed_out = False
        # Addresses in resolver order, one at a time: each gets the connect timeout (TLS handshake
        # included), the whole attempt is bounded by the caller's deadline.
        for address in destination.addresses:
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    reader, writer = await asyncio.open_connection(
                        host=str(address),  # numeric: asyncio does not resolve it again
                        port=destination.port,
                        ssl=self.ssl_context if use_tls else None,
                        server_hostname=destination.host if use_tls else None,
                    )
                return reader, writer, address
            except ssl.SSLError:
                raise  # a certificate problem is not fixed by another address of the same name
            except TimeoutError:
                timed_out = True
                failures.append(f"{address}: timeout")
            except OSError as exc:
                failures.append(f"{address}: {exc.strerror or type(exc).__name__}")
        code = (
            AttemptError.CONNECT_TIMEOUT if timed_out and len(failures) == 1 else AttemptError.CONNECT_FAILED
        )
        raise _ConnectFailed(code, "could not connect: " + "; ".join(failures))

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, dict[str, str], _BoundedReader]:
        writer.write(request)
        write_error: OSError | None = None
        try:
            await writer.drain()
        except OSError as exc:
            # The receiver may answer (e.g. 413) and close before reading the whole body: still try to
            # read its status.
            write_error = exc
        bounded = _BoundedReader(reader, self.max_response_bytes)
        while True:
            head = await bounded.read_until(b"\r\n\r\n")
            if head is None:
                if write_error is not None:
                    raise write_error
                if bounded.remaining <= 0:
                    raise _ProtocolError("the response headers exceed the read limit")
                raise _ProtocolError("the connection closed before a response status")
            status, headers = _parse_head(head)
            if 100 <= status < 200 and status != 101:
                continue  # interim responses (100 Continue, 103 Early Hints) precede the real one
            return status, headers, bounded


class _ConnectFailed(Exception):
    def __init__(self, code: AttemptError, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _failure(
    started: float, code: AttemptError, message: str, address: IPAddress | None = None
) -> AttemptResult:
    return AttemptResult(
        status_code=None,
        latency_ms=_elapsed_ms(started),
        error=message,
        retry_after_s=None,
        gone=False,
        error_code=code,
        address=None if address is None else str(address),
    )
