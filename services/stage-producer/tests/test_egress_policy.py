"""The egress policy as pure functions: every spelling of a private address is refused, public
addresses pass, the test-only loopback switch opens exactly 127.0.0.1 and nothing else."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestage.egress import EgressPolicy, Refusal, Target, parse_host, parse_ipv4

POLICY = EgressPolicy()
PRIVATE_NETWORKS = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("192.168.0.1.", "192.168.0.1"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
    ],
)
def test_hosts_are_read_the_way_browsers_read_them(host: str, address: str) -> None:
    assert parse_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3.4.5", "0x1g.1", "1..1", "4294967296"])
def test_numeric_hosts_that_are_not_addresses_are_refused(host: str) -> None:
    assert isinstance(parse_host(host), Refusal)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",
        "https://example.com/path?q=1",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",
        "http://[64:ff9b::5db8:d822]/",  # NAT64 of a public address
        "http://[2002:5db8:d822::1]/",  # 6to4 of a public address
    ],
)
def test_public_targets_pass(url: str) -> None:
    assert isinstance(POLICY.check_url(url), Target)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::127.0.0.1]/", "IPv4-compatible"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
        ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://[ff02::1]/", "multicast"),
        ("http://u:p@example.com/", "credentials"),
        ("http://example.com:8080/", "port 8080"),
        ("http://exa mple.com/", "whitespace"),
        ("javascript:alert(1)", "scheme javascript:"),
        ("blob:http://example.com/x", "scheme blob:"),
        ("HTTP://LOCALHOST/", "loopback"),
        ("http://bad_label-.example/", "not a valid DNS name"),
    ],
)
def test_other_refusals_say_why(url: str, why: str) -> None:
    result = POLICY.check_url(url)
    assert isinstance(result, Refusal), result
    assert why in result.reason


def test_the_test_loopback_switch_opens_only_127_0_0_1() -> None:
    loose = EgressPolicy(allow_test_loopback=True)
    assert isinstance(loose.check_url("http://127.0.0.1:5173/page"), Target)
    for url in ["http://127.0.0.2/", "http://[::1]/", "http://localhost/", "http://10.0.0.1/"]:
        assert isinstance(loose.check_url(url), Refusal), url
    assert isinstance(EgressPolicy().check_url("http://127.0.0.1:5173/"), Refusal)


def _spell(address: int, style: str, parts: int) -> str:
    octets = list(address.to_bytes(4, "big"))
    numbers = [*octets[: parts - 1], int.from_bytes(bytes(octets[parts - 1 :]), "big")]
    if style == "hex":
        return ".".join(hex(n) for n in numbers)
    if style == "octal":
        return ".".join("0" + oct(n)[2:] if n else "0" for n in numbers)
    return ".".join(str(n) for n in numbers)


@given(
    network=st.sampled_from(PRIVATE_NETWORKS),
    offset=st.integers(0, 2**24),
    style=st.sampled_from(["decimal", "hex", "octal"]),
    parts=st.integers(1, 4),
)
def test_any_spelling_of_a_private_address_is_refused(
    network: str, offset: int, style: str, parts: int
) -> None:
    net = ipaddress.IPv4Network(network)
    address = int(net.network_address) + offset % net.num_addresses
    spelled = _spell(address, style, parts)
    assert parse_ipv4(spelled) == ipaddress.IPv4Address(address), spelled
    result = POLICY.check_url(f"http://{spelled}/")
    assert isinstance(result, Refusal), spelled
    assert str(ipaddress.IPv4Address(address)) in result.reason


@given(st.integers(0, 2**32 - 1))
def test_ipv4_mapped_and_nat64_forms_are_judged_by_their_ipv4(value: int) -> None:
    v4 = ipaddress.IPv4Address(value)
    plain = POLICY.address_refusal(v4)
    for wrapped in (
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | value),
    ):
        if plain is not None:
            assert POLICY.address_refusal(wrapped) is not None, wrapped
