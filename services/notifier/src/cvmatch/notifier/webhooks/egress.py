"""Where webhooks may go: URL parsing and the destination address policy.

:func:`check_destination` is called when an endpoint is registered *and* before every delivery attempt;
the sender then connects to the addresses it returned and never resolves the name again. That closes
DNS rebinding (a name answering a public address at registration and a private one later) and
time-of-check/time-of-use gaps between two resolutions.

The URL parser is deliberately stricter than ``urllib.parse``: anything on which two URL parsers could
disagree (userinfo, backslashes, whitespace, percent-encoded hosts, numeric shorthand) is either refused
or normalised here, so that the host we check is the host we connect to and name in SNI / ``Host``.

The address deny list is built by hand: ``ipaddress``'s ``is_global`` / ``is_private`` call multicast,
IPv4-compatible, NAT64 and 6to4 addresses "global" and CGNAT neither (see shared/NOTES.md).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

import idna

from cvmatch.notifier.webhooks.resolver import IPAddress, ResolutionError, Resolver, SystemResolver

__all__ = [
    "CheckedDestination",
    "EgressPolicy",
    "InsecureWebhookURL",
    "InvalidWebhookURL",
    "ParsedWebhookURL",
    "PrivateWebhookURL",
    "UnresolvableWebhookHost",
    "WebhookDestinationError",
    "address_denial",
    "check_destination",
    "parse_webhook_url",
]

MAX_URL_LENGTH = 2048


# --------------------------------------------------------------------------------------------- errors


class WebhookDestinationError(Exception):
    """A webhook URL or its resolved destination is refused. ``reason`` is the stable public code."""

    reason: ClassVar[str] = "INVALID_WEBHOOK_URL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidWebhookURL(WebhookDestinationError):
    """The URL is malformed or uses a construct we refuse to interpret (userinfo, backslash, ...)."""

    reason: ClassVar[str] = "INVALID_WEBHOOK_URL"


class InsecureWebhookURL(WebhookDestinationError):
    """The URL is not ``https://`` (and plain HTTP is not allowed by the operator)."""

    reason: ClassVar[str] = "INSECURE_WEBHOOK_URL"


class PrivateWebhookURL(WebhookDestinationError):
    """The host is, or resolves to, an address that is not on the public internet."""

    reason: ClassVar[str] = "PRIVATE_WEBHOOK_URL"

    def __init__(self, message: str, address: IPAddress, category: str) -> None:
        super().__init__(message)
        self.address = address
        self.category = category


class UnresolvableWebhookHost(WebhookDestinationError):
    """The host name does not resolve (now): no address could be checked, so nothing is sent."""

    reason: ClassVar[str] = "UNRESOLVABLE_WEBHOOK_HOST"


# --------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Operator settings for webhook egress. The defaults are the production ones.

    ``allow_http``: accept ``http://`` URLs (local development only).
    ``allow_loopback``: accept 127.0.0.0/8 and ::1 destinations (tests and local receivers). Nothing
    else that is private becomes reachable through it: not 0.0.0.0, not ``::ffff:127.0.0.1``.
    """

    allow_http: bool = False
    allow_loopback: bool = False


@dataclass(frozen=True, slots=True)
class CheckedDestination:
    """A URL that passed the policy, with the addresses the sender must connect to (in order).

    ``host`` is the normalised host (lower-case ASCII / punycode, no brackets for IPv6); it is what
    TLS verifies the certificate against and what SNI carries. ``path_qs`` is the request target.
    """

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    path_qs: str

    @property
    def is_ip_literal(self) -> bool:
        """True when the URL named an address rather than a host name."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: the original host, bracketed if IPv6, port if not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


# --------------------------------------------------------------------------------------- address rules

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# IANA IPv4 Special-Purpose Address Registry, every block that must never receive a webhook.
# 255.255.255.255 sits inside 240.0.0.0/4 but is listed first so the message says "broadcast".
_DENIED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("0.0.0.0/8"), "unspecified / this network"),  # connecting to 0.0.0.0 reaches local listeners
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared address space (CGNAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),  # includes the cloud metadata service 169.254.169.254
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "IETF protocol assignments"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.31.196.0/24"), "AS112"),
    (_V4("192.52.193.0/24"), "AMT"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("192.175.48.0/24"), "AS112"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

_LOOPBACK_V4 = _V4("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")

# IPv6 forms that carry an IPv4 address in their low 32 bits (or, for 6to4, in bits 16-47): they are
# judged by the embedded address, because a dual-stack host or a translator turns them into it.
_V4_MAPPED = _V6("::ffff:0:0/96")
_V4_TRANSLATED = _V6("::ffff:0:0:0/96")  # RFC 2765 SIIT
_V4_COMPATIBLE = _V6("::/96")  # deprecated; includes :: and ::1, which are handled first
_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")

_DENIED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    # The local-use NAT64 prefix may be any length from /48 to /96, so where the IPv4 address sits is
    # unknowable: refuse the whole block (it is by definition not globally routed).
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001::/23"), "IETF protocol assignments (incl. Teredo)"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "SRv6 SIDs"),
    (_V6("fc00::/7"), "unique local (ULA)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local (deprecated)"),
    (_V6("ff00::/8"), "multicast"),
)

# Only 2000::/3 is allocated as global unicast; everything outside it (after the embedded forms above)
# is reserved or unassigned and refused.
_GLOBAL_UNICAST_V6 = _V6("2000::/3")


def _v4_denial(address: ipaddress.IPv4Address) -> str | None:
    for network, category in _DENIED_V4:
        if address in network:
            return category
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address a mapped / translated / NAT64 / 6to4 IPv6 address stands for, and the form."""
    if address in _V4_MAPPED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-mapped"
    if address in _V4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-translated"
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF), "6to4"
    return None


def address_denial(address: IPAddress, policy: EgressPolicy) -> str | None:
    """Why ``address`` may not receive a webhook under ``policy`` (a category), or None if it may."""
    if isinstance(address, ipaddress.IPv4Address):
        if policy.allow_loopback and address in _LOOPBACK_V4:
            return None
        return _v4_denial(address)

    if address.scope_id is not None:
        return "scoped address"
    if address == _LOOPBACK_V6 and policy.allow_loopback:
        return None
    for network, category in _DENIED_V6[:2]:  # :: and ::1 before the IPv4-compatible rule catches them
        if address in network:
            return category
    embedded = _embedded_v4(address)
    if embedded is not None:
        v4, form = embedded
        # Loopback stays refused here even with allow_loopback: the operator setting opens 127/8 and
        # ::1 for local receivers, not every spelling of them.
        inner = _v4_denial(v4)
        return f"{form} {inner}" if inner is not None else None
    if address in _V4_COMPATIBLE:
        return "IPv4-compatible (deprecated)"
    for network, category in _DENIED_V6[2:]:
        if address in network:
            return category
    if address not in _GLOBAL_UNICAST_V6:
        return "reserved"
    return None


# ------------------------------------------------------------------------------------------ URL parsing

# After IDNA, a host name is ASCII letters, digits, hyphens and dots; underscores occur in real DNS
# names, so they are accepted too.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
# Printable ASCII that may appear verbatim in a request target; anything else is percent-encoded.
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class ParsedWebhookURL:
    """A syntactically valid, normalised webhook URL (not yet resolved or checked)."""

    scheme: str
    host: str  # normalised; IPv6 without brackets
    port: int
    path_qs: str
    literal: IPAddress | None  # set when the host is an address (any IPv4 spelling, or [IPv6])


def _normalise_host_name(raw: str) -> str:
    if "%" in raw:
        raise InvalidWebhookURL("percent-encoded characters are not allowed in the host")
    try:
        host = raw.lower() if raw.isascii() else idna.encode(raw, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidWebhookURL(f"the host is not a valid international domain name: {exc}") from None
    # One trailing dot is the fully-qualified spelling of the same name; keeping it would break
    # certificate matching and the Host header.
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > 253:
        raise InvalidWebhookURL("the host name is empty or too long")
    labels = host.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidWebhookURL(f"the host name has an invalid label: {label!r}")
    return host


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Parse every IPv4 spelling that resolvers accept (``127.1``, ``0x7f000001``, ``0177.0.0.1``...).

    The address is then checked and used as is, without a resolver round trip that could disagree.
    A host whose last label is numeric but that is not an address (``1.2.3.4.5``, ``08.1.1.1``) is
    refused, as the WHATWG URL standard does, rather than passed to DNS.
    """
    last = host.rsplit(".", 1)[-1]
    if not _NUMERIC_LABEL.match(last):
        return None
    try:
        # inet_aton implements the classic BSD parser: the same shorthand forms getaddrinfo accepts.
        packed = socket.inet_aton(host)
    except OSError:
        raise InvalidWebhookURL(f"the host {host!r} looks numeric but is not an IPv4 address") from None
    return ipaddress.IPv4Address(packed)


def parse_webhook_url(url: str, policy: EgressPolicy) -> ParsedWebhookURL:
    """Parse and normalise a webhook URL without resolving it. Raises a :class:`WebhookDestinationError`."""
    if not isinstance(url, str) or not url:
        raise InvalidWebhookURL("the webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookURL(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    # Whitespace and control characters are silently dropped by some parsers (WHATWG strips tabs and
    # newlines) and kept by others; backslashes are "/" to browsers but not to urllib. Refuse them all
    # rather than guess which reading the user meant.
    for ch in url:
        if ch == "\\":
            raise InvalidWebhookURL("backslashes are not allowed in a webhook URL")
        if ord(ch) <= 0x20 or 0x7F <= ord(ch) <= 0x9F or ch.isspace():
            raise InvalidWebhookURL("whitespace and control characters are not allowed in a webhook URL")

    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise InvalidWebhookURL("the webhook URL must be absolute (https://host/path)")
    scheme = scheme.lower()
    if scheme == "http":
        if not policy.allow_http:
            raise InsecureWebhookURL("webhook URLs must use https://")
    elif scheme != "https":
        raise InsecureWebhookURL(f"webhook URLs must use https://, not {scheme}://")

    end = len(rest)
    for delimiter in "/?#":
        index = rest.find(delimiter)
        if index != -1:
            end = min(end, index)
    authority, target = rest[:end], rest[end:]
    if "@" in authority:
        # Userinfo is the classic confusion trick (https://trusted.example@evil/); credentials belong
        # in the signing secret, not the URL.
        raise InvalidWebhookURL("user information (user@host) is not allowed in a webhook URL")
    if not authority:
        raise InvalidWebhookURL("the webhook URL has no host")

    literal: IPAddress | None = None
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise InvalidWebhookURL("unterminated IPv6 address in the webhook URL")
        inner, after = authority[1:close], authority[close + 1 :]
        if "%" in inner:
            raise InvalidWebhookURL("IPv6 zone identifiers are not allowed in a webhook URL")
        try:
            literal = ipaddress.IPv6Address(inner)
        except ValueError:
            raise InvalidWebhookURL("invalid IPv6 address in the webhook URL") from None
        host = str(literal)
        if after and not after.startswith(":"):
            raise InvalidWebhookURL("unexpected characters after the IPv6 address")
        port_text = after[1:] if after else None
    else:
        raw_host, colon, port_text_raw = authority.partition(":")
        if colon and ":" in port_text_raw:
            raise InvalidWebhookURL("IPv6 addresses must be written in brackets")
        port_text = port_text_raw if colon else None
        host = _normalise_host_name(raw_host)
        literal = _ipv4_literal(host)
        if literal is not None:
            host = str(literal)

    if port_text is None or port_text == "":
        port = 443 if scheme == "https" else 80
    elif _PORT.match(port_text) and 0 < int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise InvalidWebhookURL("invalid port in the webhook URL")

    # The fragment never leaves the client. Non-ASCII in the path or query is percent-encoded so that
    # the request line stays ASCII; existing %XX escapes are kept as they are.
    target = target.split("#", 1)[0]
    if not target.startswith("/"):
        target = "/" + target
    path_qs = quote(target, safe=_TARGET_SAFE)
    return ParsedWebhookURL(scheme=scheme, host=host, port=port, path_qs=path_qs, literal=literal)


def _url_text(parsed: ParsedWebhookURL) -> str:
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    default = 443 if parsed.scheme == "https" else 80
    netloc = host if parsed.port == default else f"{host}:{parsed.port}"
    return f"{parsed.scheme}://{netloc}{parsed.path_qs}"


_DEFAULT_RESOLVER = SystemResolver()


async def check_destination(
    url: str, policy: EgressPolicy, resolver: Resolver | None = None
) -> CheckedDestination:
    """Parse ``url``, resolve its host and refuse it unless *every* address is allowed by ``policy``.

    Call it at registration and before every delivery attempt, and connect only to the returned
    ``addresses``. Raises :class:`InsecureWebhookURL`, :class:`InvalidWebhookURL`,
    :class:`PrivateWebhookURL` or :class:`UnresolvableWebhookHost` (all :class:`WebhookDestinationError`
    with a stable ``reason``).
    """
    parsed = parse_webhook_url(url, policy)
    if parsed.literal is not None:
        addresses: tuple[IPAddress, ...] = (parsed.literal,)
    else:
        try:
            addresses = tuple(await (resolver or _DEFAULT_RESOLVER).resolve(parsed.host, parsed.port))
        except ResolutionError as exc:
            raise UnresolvableWebhookHost(f"the webhook host {parsed.host!r} does not resolve") from exc
        if not addresses:
            raise UnresolvableWebhookHost(f"the webhook host {parsed.host!r} has no address")
    for address in addresses:
        category = address_denial(address, policy)
        if category is not None:
            raise PrivateWebhookURL(
                f"the webhook host {parsed.host!r} resolves to a non-public address ({category})",
                address=address,
                category=category,
            )
    return CheckedDestination(
        url=_url_text(parsed),
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        addresses=addresses,
        path_qs=parsed.path_qs,
    )
