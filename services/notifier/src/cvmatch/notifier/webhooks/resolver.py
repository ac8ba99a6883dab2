"""Host name resolution for webhook egress, behind an injectable interface.

The egress check resolves a destination before every delivery attempt and the sender then connects to
exactly those addresses, so the resolver is the only place a name becomes an address. Tests and local
runs inject a :class:`StaticResolver` (for example ``hooks.test`` -> ``127.0.0.1``) or a resolver that
changes its answer between calls to simulate DNS rebinding.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = [
    "CallableResolver",
    "IPAddress",
    "ResolutionError",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
]


class ResolutionError(Exception):
    """The host name has no usable address (NXDOMAIN, no A/AAAA records, resolver failure or timeout)."""


class Resolver(Protocol):
    """Turns a host name into the addresses a TCP connection to it may use."""

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Return every address of ``host`` (at least one) or raise :class:`ResolutionError`."""
        ...


def _dedupe(addresses: Iterable[IPAddress]) -> tuple[IPAddress, ...]:
    # Keep the resolver's order (it encodes the system's address preference) but drop repeats,
    # which getaddrinfo produces once per socket type / protocol combination.
    return tuple(dict.fromkeys(addresses))


class SystemResolver:
    """The default resolver: the event loop's ``getaddrinfo`` (the system's resolver, in a thread).

    It returns every A and AAAA answer so that the egress policy can refuse a name when *any* of its
    addresses is forbidden: a name that answers one public and one private address could otherwise be
    made to connect to the private one.
    """

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._timeout_s = timeout_s

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Resolve ``host`` with ``loop.getaddrinfo``; raise :class:`ResolutionError` on any failure."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except TimeoutError as exc:
            raise ResolutionError(f"resolving {host!r} timed out") from exc
        except (OSError, UnicodeError) as exc:
            # socket.gaierror is an OSError; its text ("Name or service not known") carries no secret.
            raise ResolutionError(f"cannot resolve {host!r}: {exc}") from exc
        addresses: list[IPAddress] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the zone is irrelevant to the policy
            # and ipaddress would keep it, so cut it off.
            text = str(sockaddr[0]).split("%", 1)[0]
            try:
                addresses.append(ipaddress.ip_address(text))
            except ValueError as exc:
                raise ResolutionError(f"resolver returned a malformed address for {host!r}") from exc
        if not addresses:
            raise ResolutionError(f"{host!r} has no IPv4 or IPv6 address")
        return _dedupe(addresses)


class StaticResolver:
    """A resolver answering from a fixed table (tests, local runs with fake host names).

    Unknown names raise :class:`ResolutionError`; nothing falls through to real DNS, so a test can
    never reach the network by accident.
    """

    def __init__(self, table: Mapping[str, Sequence[str | IPAddress]]) -> None:
        self._table = {
            name.lower().rstrip("."): _dedupe(ipaddress.ip_address(a) for a in answers)
            for name, answers in table.items()
        }
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Answer ``host`` from the table."""
        self.calls.append(host)
        try:
            answers = self._table[host.lower().rstrip(".")]
        except KeyError:
            raise ResolutionError(f"cannot resolve {host!r}: not in the static table") from None
        if not answers:
            raise ResolutionError(f"{host!r} has no address")
        return answers


class CallableResolver:
    """Adapts a plain function ``(host, call_number) -> addresses`` into a resolver.

    Handy for rebinding tests: the function sees how many times it was called and can answer a
    public address first and a private one afterwards.
    """

    def __init__(self, answer: Callable[[str, int], Sequence[str | IPAddress]]) -> None:
        self._answer = answer
        self.calls = 0

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Call the function and parse its answer."""
        self.calls += 1
        answers = _dedupe(ipaddress.ip_address(a) for a in self._answer(host, self.calls))
        if not answers:
            raise ResolutionError(f"{host!r} has no address")
        return answers
