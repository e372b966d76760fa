"""Where the capture browser may go: pure checks of URLs, host names and addresses.

One source of truth for two places. The stage producer's egress proxy
(`stage_producer/egress/proxy.py`) calls these for every request the browser makes (the page,
each redirect, each subresource, each WebSocket): that is the authority. The edge calls
`EgressPolicy.check_url` on an operator's capture URL (`livestage.domains.capture_refusal`) to
refuse at once, with the reason, what the producer would refuse anyway: an early, partial answer.
They take data and return data: `None` when a target is fine, a `Refusal` with a reason a person
can read otherwise. No DNS and no sockets here; resolving happens once in the proxy, which
checks every answer with `address_refusal` and then connects to exactly the address it checked
(so a name that resolves to a private address is refused there, never here).

Host spellings follow the WHATWG URL standard that browsers use, so that the proxy reads a host
the way Chromium would: `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` are all 127.0.0.1.
IPv6 addresses that carry an IPv4 address inside (IPv4-mapped `::ffff:a.b.c.d`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`, IPv4-compatible `::a.b.c.d`) are judged by that IPv4 address
too; Teredo and local-use NAT64 are refused outright.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES: Final = ("http", "https")
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
TEST_LOOPBACK: Final = ipaddress.IPv4Address("127.0.0.1")

_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")

# Named ranges for the reasons (checked in order; the first that contains the address names it).
_NAMED_RANGES: Final[tuple[tuple[str, str], ...]] = (
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
    ("10.0.0.0/8", "private (10.0.0.0/8)"),
    ("172.16.0.0/12", "private (172.16.0.0/12)"),
    ("192.168.0.0/16", "private (192.168.0.0/16)"),
    ("169.254.0.0/16", "link-local (169.254.0.0/16, where cloud metadata services live)"),
    ("100.64.0.0/10", "carrier-grade NAT shared space (100.64.0.0/10)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
    ("192.0.2.0/24", "documentation (192.0.2.0/24)"),
    ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
    ("198.51.100.0/24", "documentation (198.51.100.0/24)"),
    ("203.0.113.0/24", "documentation (203.0.113.0/24)"),
    ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
    ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("fc00::/7", "unique local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("fec0::/10", "site-local (fec0::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
    ("2001:db8::/32", "documentation (2001:db8::/32)"),
    ("100::/64", "discard-only (100::/64)"),
)
_RANGES: Final = tuple((ipaddress.ip_network(cidr), name) for cidr, name in _NAMED_RANGES)

_HOST_LABEL: Final = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]{0,30}")
_FORBIDDEN_NAMES: Final = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@dataclass(frozen=True)
class Refusal:
    """Why a target is not allowed; `reason` is shown in logs and to operators."""

    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Target:
    """A checked URL's parts: scheme, host (a name or an address literal) and port."""

    scheme: str
    host: str
    port: int
    address: IPAddress | None  # set when the host was an address literal

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class EgressPolicy:
    """What the capture browser may reach: public addresses on allowed ports, http(s) only,
    never a host under one of `blocked_domains` (STAGE_BLOCKED_DOMAINS, normalized by
    `livestage.domains.normalize_domains`).

    `allow_test_loopback` (setting STAGE_UNSAFE_ALLOW_LOOPBACK_FOR_TESTS) additionally lets
    exactly 127.0.0.1, on any port, through, for local test pages; nothing else changes.
    """

    allowed_ports: frozenset[int] = frozenset({80, 443})
    allow_test_loopback: bool = False
    blocked_domains: tuple[str, ...] = ()

    def address_refusal(self, address: IPAddress) -> Refusal | None:
        if self.allow_test_loopback and address == TEST_LOOPBACK:
            return None
        return address_refusal(address)

    def port_refusal(self, address: IPAddress | None, port: int) -> Refusal | None:
        if self.allow_test_loopback and address == TEST_LOOPBACK:
            return None
        if port not in self.allowed_ports:
            allowed = ", ".join(str(p) for p in sorted(self.allowed_ports))
            return Refusal(f"port {port} is not allowed (allowed: {allowed}; STAGE_ALLOWED_PORTS)")
        return None

    def check_url(self, url: str) -> Target | Refusal:
        """Check a URL before any network use: scheme, host spelling, literal address, port."""
        if not isinstance(url, str) or not url:
            return Refusal("empty URL")
        if len(url) > 2048:
            return Refusal("URL longer than 2048 characters")
        if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
            return Refusal("URL contains whitespace or control characters")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ALLOWED_SCHEMES:
            shown = f"{scheme}:" if _SCHEME.fullmatch(scheme) else "(none or unreadable)"
            return Refusal(f"scheme {shown} is not allowed (only http and https)")
        try:
            parts = urlsplit(url)
            raw_port = parts.port
        except ValueError:  # its message may quote the URL: say what is wrong, not what it was
            return Refusal("malformed URL: its host or port cannot be read")
        if parts.username is not None or parts.password is not None:
            return Refusal("URLs with credentials (user:password@) are not allowed")
        hostname = parts.hostname or ""
        port = raw_port if raw_port is not None else DEFAULT_PORTS[scheme]
        return self.check_authority(scheme, hostname, port)

    def check_authority(self, scheme: str, host: str, port: int) -> Target | Refusal:
        """Check a host and port (as in a CONNECT line or a URL): spelling, literal, port."""
        parsed = parse_host(host)
        if isinstance(parsed, Refusal):
            return parsed
        if isinstance(parsed, str):
            refusal = name_refusal(parsed)
            address: IPAddress | None = None
        else:
            refusal = self.address_refusal(parsed)
            address = parsed
        if refusal is None:
            refusal = self.port_refusal(address, port)
        if refusal is None:
            refusal = self.domain_refusal(str(parsed))
        if refusal is not None:
            return refusal
        return Target(scheme, str(parsed), port, address)

    def domain_refusal(self, host: str) -> Refusal | None:
        blocked = blocked_by(_ascii_host(host), self.blocked_domains)
        if blocked is None:
            return None
        return Refusal(f"host {host} is on the blocklist ({blocked}; STAGE_BLOCKED_DOMAINS)")


def host_matches(host: str, domain: str) -> bool:
    """`host` is `domain` or lies under it, on whole labels (`example.org` covers
    `a.example.org`, never `badexample.org`)."""
    host = host.lower().removesuffix(".")
    return host == domain or host.endswith("." + domain)


def blocked_by(host: str, blocked: Iterable[str]) -> str | None:
    """The entry of `blocked` that `host` falls under, if any."""
    return next((domain for domain in blocked if host_matches(host, domain)), None)


def _ascii_host(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def parse_host(host: str) -> IPAddress | str | Refusal:
    """A URL host as a browser reads it: an address literal, a lowercase name, or a Refusal.

    `[v6]` and dotted, decimal, octal and hex IPv4 forms (`2130706433`, `0x7f.1`, `127.1`)
    become addresses; anything that ends in a number but is not a valid IPv4 address is refused
    (browsers refuse it too).
    """
    host = host.strip()
    if not host:
        return Refusal("URL has no host")
    if host.startswith("[") or ":" in host:
        literal = host.removeprefix("[").removesuffix("]").split("%", 1)[0]
        try:
            return ipaddress.IPv6Address(literal)
        except ValueError:
            return Refusal("host is not a valid IPv6 address")
    name = host.lower()
    if _ends_in_a_number(name):
        v4 = parse_ipv4(name)
        if v4 is None:
            return Refusal("host looks numeric but is not a valid IPv4 address")
        return v4
    return name.removesuffix(".")


def _ends_in_a_number(host: str) -> bool:
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    if last and all(ch.isdigit() for ch in last):
        return True
    return re.fullmatch(r"0x[0-9a-f]*", last) is not None


def _ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    base = 10
    if part.startswith(("0x", "0X")):
        part, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    if part == "":
        return 0
    try:
        return int(part, base)
    except ValueError:
        return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The WHATWG IPv4 parser: 1-4 dotted parts, each decimal, octal (0..) or hex (0x..)."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    values = [number for number in numbers if number is not None]
    if any(value > 255 for value in values[:-1]):
        return None
    if values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return ipaddress.IPv4Address(address)


def name_refusal(name: str) -> Refusal | None:
    """Refuse host names that always mean this machine, and malformed names.

    The reasons of this function and `parse_host` never repeat a name that was refused for its
    spelling (the edge sends them to the operator; the producer logs the URL beside them)."""
    if name in _FORBIDDEN_NAMES:
        return Refusal(f"host {name!r} always means this machine (loopback)")
    if name.endswith(".localhost"):
        return Refusal("a host under .localhost always means this machine (loopback)")
    if len(name) > 253:
        return Refusal("host name longer than 253 characters")
    labels = name.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return Refusal("host is not a valid DNS name")
    return None


def _range_name(address: IPAddress) -> str | None:
    for network, name in _RANGES:
        if address.version == network.version and address in network:
            return name
    return None


def address_refusal(address: IPAddress) -> Refusal | None:
    """None when `address` (and any IPv4 address inside it) is a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = None
        how = ""
        if address.ipv4_mapped is not None:
            embedded, how = address.ipv4_mapped, "IPv4-mapped"
        elif address in _NAT64_LOCAL_USE:
            return Refusal(f"{address} is a local-use NAT64 address (64:ff9b:1::/48)")
        elif address in _NAT64_WELL_KNOWN:
            embedded, how = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
        elif address.sixtofour is not None:
            embedded, how = address.sixtofour, "6to4"
        elif address.teredo is not None:
            return Refusal(f"{address} is a Teredo tunnel address (2001::/32)")
        elif address in _IPV4_COMPATIBLE and int(address) > 1:
            embedded, how = ipaddress.IPv4Address(int(address)), "IPv4-compatible"
        if embedded is not None:
            inner = address_refusal(embedded)
            if inner is not None:
                return Refusal(f"{address} is {how} {embedded}: {inner.reason}")
            if how == "IPv4-compatible":
                return Refusal(f"{address} is a deprecated IPv4-compatible address")
            return None
    named = _range_name(address)
    if named is not None:
        return Refusal(f"{address} is {named}")
    if address.is_multicast:
        return Refusal(f"{address} is multicast")
    if address.is_unspecified or address.is_reserved or not address.is_global:
        return Refusal(f"{address} is not a global unicast address")
    return None
