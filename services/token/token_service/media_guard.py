"""What one edge replica lets `/media` readers hold: counted slots, no framework.

- `ClientStreams`: responses in flight per client network (a slow reader holds its slot until it
  finishes or is cut off), so one client cannot take every slot;
- `Slots`: a global cap with a short wait, one for clips (held for the whole stream) and one for
  image reads (held only while the image is read from the stage producer). The upstream HTTP
  pool has room for both caps, so the pool itself never makes anyone wait.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

ABORT_EXTENSION = "livestage.abort"
"""Scope extension: a callable that drops the connection at once (see `app.EdgeApp`)."""


class Refused(Exception):
    """No slot: `reason` is a `livestage.edge.media_refused` reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ClientStreams:
    """At most `limit` responses in flight per client key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: Counter[str] = Counter()

    def acquire(self, client: str) -> None:
        if self._in_flight[client] >= self.limit:
            raise Refused(
                "client_streams",
                f"limit 'media-streams-per-client' ({self.limit} responses in flight per client) "
                "reached; finish or close one first",
            )
        self._in_flight[client] += 1

    def release(self, client: str) -> None:
        self._in_flight[client] -= 1
        if self._in_flight[client] <= 0:
            del self._in_flight[client]

    def in_flight(self, client: str | None = None) -> int:
        return self._in_flight[client] if client is not None else sum(self._in_flight.values())


class Slots:
    """A global cap; `hold()` waits up to `wait_s` for a free slot, else raises `Refused`."""

    def __init__(self, what: str, setting: str, size: int, wait_s: float) -> None:
        self.what, self.setting, self.size, self.wait_s = what, setting, size, wait_s
        self._free = asyncio.Semaphore(size)
        self.in_use = 0

    async def acquire(self) -> None:
        try:
            async with asyncio.timeout(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise Refused(
                "busy",
                f"this edge is {self.what} as many assets as it may ({self.setting}={self.size})",
            ) from None
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1
        self._free.release()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


@dataclass
class MediaGuard:
    clients: ClientStreams
    streams: Slots
    reads: Slots

    @classmethod
    def create(
        cls, *, per_client: int, max_streams: int, max_reads: int, wait_s: float
    ) -> MediaGuard:
        return cls(
            ClientStreams(per_client),
            Slots("streaming", "TOKEN_MEDIA_MAX_STREAMS", max_streams, wait_s),
            Slots("reading", "TOKEN_MEDIA_MAX_READS", max_reads, wait_s),
        )

    @property
    def upstream_connections(self) -> int:
        """Connections the upstream pool needs so that it never makes a slot holder wait, plus
        a few for the status probe."""
        return self.streams.size + self.reads.size + 4
