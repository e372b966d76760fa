"""Name resolution for the egress proxy: one base, the system resolver behind it.

The proxy asks a `Resolver` once per request and connects only to the addresses that answer
gave (after checking each), so a name that answers differently the next time (DNS rebinding)
cannot slip a private address past the check. Tests put a scripted resolver here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol

from livestage.egress import IPAddress


class ResolveError(Exception):
    """The name did not resolve (no such host, resolver down, timed out)."""


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to for a TCP connection to `port`, in preference order."""
        ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), bounded in time."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except (OSError, TimeoutError) as error:
            raise ResolveError(f"{host} did not resolve: {error}") from error
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        return addresses
