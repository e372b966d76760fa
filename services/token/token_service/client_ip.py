"""Which address a request really came from, believing only configured proxies."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


# Parsed once per address seen lately: every request parses its peer (and its network).
ADDRESSES_REMEMBERED = 4096


@functools.lru_cache(maxsize=ADDRESSES_REMEMBERED)
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client address: the socket peer, unless it is a trusted proxy.

    Behind trusted proxies, walk X-Forwarded-For from the right (the hop nearest us) and return
    the first address that is not itself a trusted proxy. Unparseable entries stop the walk at
    the last address we could vouch for, so a client cannot pick its own address.
    """

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in trusted)

    current = _address(peer)
    if not is_trusted(current) or not forwarded_for:
        return str(current) if current is not None else peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not is_trusted(address):
            break
    return str(current)


IPV6_CLIENT_PREFIX = 64


@functools.lru_cache(maxsize=ADDRESSES_REMEMBERED)
def client_network(address: str) -> str:
    """The network a client address stands for in rate limits: the IPv4 address itself, or the
    address's IPv6 /64 (one subscriber usually holds a whole /64, so counting single IPv6
    addresses would give each client billions of buckets)."""
    parsed = _address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


def forwarded_proto(
    peer: str, forwarded_proto_header: str | None, trusted: Sequence[Network]
) -> str | None:
    """X-Forwarded-Proto when the socket peer is a trusted proxy (its last hop), else None."""
    address = _address(peer)
    if address is None or not any(address in network for network in trusted):
        return None
    if not forwarded_proto_header:
        return None
    return forwarded_proto_header.split(",")[-1].strip().lower() or None
