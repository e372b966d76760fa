"""The console's feeds, one per show: `ConsoleFeeds.subscribe(room)` opens a stream on the
room's `ConsoleFeed`, creating (and starting) the feed on first use.

Each show's feed, the default show's too, starts when a console first opens it on this edge
worker (it replays the last `TOKEN_CONSOLE_BACKLOG_S` of the show), and then stays, idle or not,
so reopening it is instant and its snapshot has the recent past; a worker no console has opened
follows no chat at all (a busy room's every line decoded for nobody cost a chat POST ~8% more).
The default show's feed is never closed. At most `TOKEN_CONSOLE_ROOMS` feeds run per edge
replica (each holds one NATS watch per subject it follows): a new show's feed closes the least
recently used feed that no console has open; when every one of them has a console open, the new
one is refused (503). `TOKEN_CONSOLE_STREAMS` caps the open streams of all feeds together.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from livestage.bus import Bus, BusUnavailable

from .feed import ConsoleFeed, ConsoleFull, ConsoleStream

log = logging.getLogger(__name__)


@dataclass
class ConsoleFeeds:
    default_room: str
    make: Callable[[str], ConsoleFeed]
    """A new (not yet started) feed of a room."""
    max_streams: int = 20
    max_rooms: int = 20
    _feeds: OrderedDict[str, ConsoleFeed] = field(default_factory=OrderedDict)
    _bus: Bus | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._feeds[self.default_room] = self.make(self.default_room)

    @property
    def default(self) -> ConsoleFeed:
        return self._feeds[self.default_room]

    def get(self, room: str) -> ConsoleFeed | None:
        """The room's running feed, if there is one."""
        return self._feeds.get(room)

    @property
    def rooms(self) -> list[str]:
        """The rooms with a feed, least recently opened first."""
        return list(self._feeds)

    @property
    def open_streams(self) -> int:
        return sum(feed.open_streams for feed in self._feeds.values())

    async def start(self, bus: Bus) -> None:
        """Follow NATS from now on: each show's feed when a console first opens it."""
        self._bus = bus

    async def stop(self) -> None:
        for feed in list(self._feeds.values()):
            await feed.stop()

    async def subscribe(self, room: str) -> tuple[ConsoleFeed, ConsoleStream]:
        """A new stream on the room's feed (`ConsoleFull` at either cap; `BusUnavailable` for
        a show whose feed cannot start before NATS answers)."""
        feed = await self._feed(room)
        # no await from here on: the cap holds for streams opened at the same time
        if self.open_streams >= self.max_streams:
            raise ConsoleFull(
                f"{self.max_streams} console streams are open on this edge; close one, or "
                "raise TOKEN_CONSOLE_STREAMS"
            )
        return feed, feed.subscribe()

    async def _feed(self, room: str) -> ConsoleFeed:
        async with self._lock:  # two consoles opening a new show start one feed
            feed = self._feeds.get(room)
            if feed is not None and feed.started:
                self._feeds.move_to_end(room)
                return feed
            if self._bus is None:
                raise BusUnavailable("not connected to NATS yet")
            if feed is None and len(self._feeds) >= self.max_rooms:
                await self._close_an_idle_feed()
            feed = feed or self.make(room)  # the default show's is made, not yet started
            try:
                await feed.start(self._bus)
            except BaseException:
                await feed.stop()
                raise
            self._feeds[room] = feed
            log.info("console: following show %s (%d shows' feeds)", room, len(self._feeds))
            return feed

    async def _close_an_idle_feed(self) -> None:
        for room, feed in self._feeds.items():
            if room != self.default_room and feed.open_streams == 0:
                del self._feeds[room]
                await feed.stop()
                log.info("console: stopped following show %s (idle, the oldest)", room)
                return
        raise ConsoleFull(
            f"consoles of {self.max_rooms} shows are open on this edge; close one, or raise "
            "TOKEN_CONSOLE_ROOMS"
        )
