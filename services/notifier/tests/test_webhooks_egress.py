"""Egress policy: URL parsing, the address deny list and check_destination (no network: resolvers are
static, numeric or /etc/hosts answers)."""

from __future__ import annotations

import ipaddress

import pytest

from cvmatch.notifier.webhooks import (
    CallableResolver,
    EgressPolicy,
    InsecureWebhookURL,
    InvalidWebhookURL,
    PrivateWebhookURL,
    StaticResolver,
    SystemResolver,
    UnresolvableWebhookHost,
    address_denial,
    check_destination,
    parse_webhook_url,
)

STRICT = EgressPolicy()
LOOPBACK_OK = EgressPolicy(allow_loopback=True)
PUBLIC = "93.184.216.34"

# Every spelling of a forbidden destination from the issue, as https:// URLs (the scheme is fine; the
# address is not). Numeric forms need no DNS: they are parsed locally or by getaddrinfo.
REFUSED_LITERALS = [
    "https://127.0.0.1/",
    "https://127.1/",
    "https://0x7f000001/",
    "https://2130706433/",
    "https://0177.0.0.1/",
    "https://0x7f.0.0.1/",
    "https://0.0.0.0/",
    "https://0/",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::127.0.0.1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://[64:ff9b::a00:1]/",
    "https://[64:ff9b:1::a00:1]/",
    "https://[2002:a00:1::1]/",
    "https://[2002:7f00:1::1]/",
    "https://224.0.0.1/",
    "https://[ff02::1]/",
    "https://255.255.255.255/",
    "https://192.0.2.1/",
    "https://198.51.100.7/",
    "https://203.0.113.9/",
    "https://[2001:db8::1]/",
    "https://240.0.0.1/",
    "https://[::]/",
    "https://１２７.０.０.１/",  # fullwidth digits: IDNA maps them to ASCII
]


@pytest.mark.parametrize("url", REFUSED_LITERALS)
async def test_forbidden_addresses_are_refused_at_check_time(url: str) -> None:
    with pytest.raises(PrivateWebhookURL) as info:
        await check_destination(url, STRICT, StaticResolver({}))
    assert info.value.reason == "PRIVATE_WEBHOOK_URL"


@pytest.mark.parametrize(
    "url",
    [u for u in REFUSED_LITERALS if u not in ("https://127.0.0.1/", "https://127.1/", "https://0x7f000001/",
                                              "https://2130706433/", "https://0177.0.0.1/",
                                              "https://0x7f.0.0.1/", "https://[::1]/",
                                              "https://１２７.０.０.１/")],
)  # fmt: skip
async def test_allow_loopback_opens_only_127_and_ipv6_loopback(url: str) -> None:
    # 0.0.0.0, ::ffff:127.0.0.1 and the like also reach local listeners but stay refused.
    with pytest.raises(PrivateWebhookURL):
        await check_destination(url, LOOPBACK_OK, StaticResolver({}))


@pytest.mark.parametrize("url", ["https://127.0.0.1:8443/x", "https://127.1/", "https://[::1]/"])
async def test_allow_loopback_accepts_loopback(url: str) -> None:
    destination = await check_destination(url, LOOPBACK_OK, StaticResolver({}))
    assert all(a.is_loopback for a in destination.addresses)


async def test_system_resolver_expands_numeric_shorthand() -> None:
    # The NOTES fact this module is built around: getaddrinfo reads 127.1 as 127.0.0.1.
    assert list(await SystemResolver().resolve("127.1", 443)) == [ipaddress.ip_address("127.0.0.1")]
    assert list(await SystemResolver().resolve("0", 443)) == [ipaddress.ip_address("0.0.0.0")]


async def test_localhost_via_the_system_resolver_is_refused() -> None:
    with pytest.raises(PrivateWebhookURL):
        await check_destination("https://localhost/hook", STRICT)
    with pytest.raises(PrivateWebhookURL):
        await check_destination("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/hook", STRICT)  # IDNA -> localhost


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolver = StaticResolver({"hooks.example.com": ["10.1.2.3"]})
    with pytest.raises(PrivateWebhookURL) as info:
        await check_destination("https://hooks.example.com/", STRICT, resolver)
    assert info.value.category == "private"


async def test_any_private_answer_among_public_ones_is_refused() -> None:
    resolver = StaticResolver({"mixed.example.com": [PUBLIC, "2606:4700:4700::1111", "fd12::1"]})
    with pytest.raises(PrivateWebhookURL):
        await check_destination("https://mixed.example.com/", STRICT, resolver)


async def test_dns_rebinding_is_caught_on_the_next_check() -> None:
    resolver = CallableResolver(lambda host, call: [PUBLIC] if call == 1 else ["169.254.169.254"])
    registered = await check_destination("https://rebind.example.com/h", STRICT, resolver)
    assert registered.addresses == (ipaddress.ip_address(PUBLIC),)
    with pytest.raises(PrivateWebhookURL):
        await check_destination("https://rebind.example.com/h", STRICT, resolver)
    assert resolver.calls == 2


async def test_unresolvable_host() -> None:
    with pytest.raises(UnresolvableWebhookHost) as info:
        await check_destination("https://nowhere.example.com/", STRICT, StaticResolver({}))
    assert info.value.reason == "UNRESOLVABLE_WEBHOOK_HOST"


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",
        "HTTP://hooks.example.com/",
        "ftp://hooks.example.com/",
        "ws://hooks.example.com/",
    ],
)
async def test_non_https_is_insecure(url: str) -> None:
    with pytest.raises(InsecureWebhookURL) as info:
        await check_destination(url, STRICT, StaticResolver({"hooks.example.com": [PUBLIC]}))
    assert info.value.reason == "INSECURE_WEBHOOK_URL"


async def test_http_needs_the_operator_setting_and_is_still_address_checked() -> None:
    resolver = StaticResolver({"hooks.example.com": [PUBLIC], "internal.example.com": ["10.0.0.1"]})
    policy = EgressPolicy(allow_http=True)
    checked = await check_destination("http://hooks.example.com/h", policy, resolver)
    assert (checked.scheme, checked.port) == ("http", 80)
    with pytest.raises(PrivateWebhookURL):
        await check_destination("http://internal.example.com/h", policy, resolver)
    with pytest.raises(InsecureWebhookURL):
        await check_destination("http://127.0.0.1/", STRICT, resolver)  # scheme is judged first


@pytest.mark.parametrize(
    "url",
    [
        "https://user@hooks.example.com/",
        "https://user:pass@hooks.example.com/",
        "https://hooks.example.com@127.0.0.1/",
        "https://hooks.example.com\\@127.0.0.1/",
        "https://hooks.example.com\\evil/",
        "https://hooks.example.com/\\",
        "https://hooks.exa\tmple.com/",
        "https://hooks.example.com/a b",
        "https://hooks.example.com\n/",
        " https://hooks.example.com/",
        "https://%31%32%37.0.0.1/",
        "https://[::1%25eth0]/",
        "https://[::1/",
        "https://[::1]x/",
        "https://::1/",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:65536/",
        "https://hooks.example.com:+443/",
        "https://hooks.example.com:44a/",
        "https:/hooks.example.com/",
        "https:hooks.example.com",
        "//hooks.example.com/",
        "https:///path",
        "https://",
        "",
        "https://1.2.3.4.5/",
        "https://08.1.1.1/",
        "https://a..b/",
        "https://-bad.example.com/",
        "https://hooks.example.com／evil/",  # fullwidth solidus maps to "/" in IDNA: not a host
        "https://" + "a" * 64 + ".example.com/",
        "https://hooks.example.com/" + "a" * 2100,
    ],
)
async def test_malformed_or_confusing_urls_are_invalid(url: str) -> None:
    resolver = StaticResolver({"hooks.example.com": [PUBLIC]})
    with pytest.raises(InvalidWebhookURL) as info:
        await check_destination(url, STRICT, resolver)
    assert info.value.reason == "INVALID_WEBHOOK_URL"
    assert resolver.calls == []  # refused before any resolution


async def test_normalisation() -> None:
    resolver = StaticResolver({"xn--bcher-kva.example": [PUBLIC]})
    checked = await check_destination("HTTPS://Bücher.EXAMPLE.:443/p/é?q=1&r=ü#frag", STRICT, resolver)
    assert checked.url == "https://xn--bcher-kva.example/p/%C3%A9?q=1&r=%C3%BC"
    assert (checked.scheme, checked.host, checked.port) == ("https", "xn--bcher-kva.example", 443)
    assert checked.path_qs == "/p/%C3%A9?q=1&r=%C3%BC"
    assert checked.host_header == "xn--bcher-kva.example"
    assert resolver.calls == ["xn--bcher-kva.example"]


async def test_port_path_and_ipv6_literal_forms() -> None:
    resolver = StaticResolver({"hooks.example.com": [PUBLIC]})
    checked = await check_destination("https://hooks.example.com:8443", STRICT, resolver)
    assert (checked.port, checked.path_qs, checked.host_header) == (8443, "/", "hooks.example.com:8443")
    checked = await check_destination("https://hooks.example.com?x=%2F", STRICT, resolver)
    assert checked.path_qs == "/?x=%2F"
    v6 = await check_destination("https://[2606:4700:4700:0::1111]:444/h", STRICT, resolver)
    assert v6.host == "2606:4700:4700::1111"
    assert v6.host_header == "[2606:4700:4700::1111]:444"
    assert v6.url == "https://[2606:4700:4700::1111]:444/h"
    assert v6.is_ip_literal
    assert resolver.calls == ["hooks.example.com"] * 2  # the literal was not sent to the resolver


def test_public_ipv4_shorthand_is_canonicalised() -> None:
    parsed = parse_webhook_url("https://0x5db8d822/", STRICT)
    assert parsed.host == PUBLIC


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("100.127.255.255", "shared address space (CGNAT)"),
        ("169.254.169.254", "link-local"),
        ("0.1.2.3", "unspecified / this network"),
        ("198.19.0.1", "benchmarking"),
        ("255.255.255.255", "broadcast"),
        ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
        ("::ffff:0:a00:1", "IPv4-translated private"),
        ("64:ff9b::6440:1", "NAT64 shared address space (CGNAT)"),
        ("2002:c0a8:101::", "6to4 private"),
        ("::a00:1", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::808:808", "local-use NAT64"),
        ("2001::1", "IETF protocol assignments (incl. Teredo)"),
        ("fec0::1", "site-local (deprecated)"),
        ("4000::1", "reserved"),
        ("100::1", "discard-only"),
    ],
)
def test_denial_categories(address: str, category: str) -> None:
    assert address_denial(ipaddress.ip_address(address), STRICT) == category


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        PUBLIC,
        "100.128.0.1",  # just past CGNAT
        "2606:4700:4700::1111",
        "2a00:1450:4001:81b::200e",
        "::ffff:8.8.8.8",  # mapped public: a dual-stack socket reaches 8.8.8.8
        "64:ff9b::808:808",  # NAT64 of a public address (IPv6-only networks)
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_denial(ipaddress.ip_address(address), STRICT) is None
