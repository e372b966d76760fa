"""Batched fan-out: a room's chat events of one short window go out as one LiveKit data packet.

A handler hands its event (a message it has just stored, or a removal) to `Fanout.send` and
waits. A quiet room (no packet of it started within the last `CHAT_FANOUT_WINDOW_MS`) sends at
once: a lone message is never held back (with whatever arrived in the same turn of the event
loop). A busy room's event opens a window that closes `CHAT_FANOUT_WINDOW_MS` after the room's
previous packet started, so a room sends at most one window's worth of packets per window and
an event waits less than a window. When a window closes, everything the room got meanwhile is
ordered (`decisions.packet_order`: messages by their
approval `seq`), packed into packets under LiveKit's reliable packet size
(`decisions.pack`) and sent; each waiting handler then learns how its packet fared: True (sent),
False (the room does not exist: nobody to deliver to) or the `DeliveryFailed` of its packet, so
it acks only after its packet was sent (and its messages marked sent, `on_sent`) and a failure
is redelivered. A packet of one event is
that event itself (the packet types readers have always known); more make a `ChatBatchEvent`.

With a window of 0 each event is its own packet, sent at once (the behaviour before batching).
Rejections go to their author alone and never pass through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from livestage import metrics
from livestage.schemas import ChatMessageEvent, ChatRemovedEvent

from .decisions import MAX_PACKET_BYTES, FanoutEvent, batch_json, pack, packet_order
from .room import RoomGateway

log = logging.getLogger(__name__)


@dataclass
class _Window:
    """The events a room got since its window opened, each with its waiting handler."""

    events: list[FanoutEvent] = field(default_factory=list)
    waiting: list[asyncio.Future[bool]] = field(default_factory=list)


Sent = Callable[..., Awaitable[object]]
"""Called as `on_sent(room, *message_ids)` with the messages of a packet once it was sent
(before its handlers hear of it): chat-history marks them sent in one Redis call."""


async def _nothing(room: str, *message_ids: str) -> None:
    return None


class Fanout:
    """Gathers each room's events for `window_s`, then sends them in as few packets as fit."""

    def __init__(
        self,
        rooms: RoomGateway,
        window_s: float,
        *,
        on_sent: Sent = _nothing,
        max_bytes: int = MAX_PACKET_BYTES,
    ) -> None:
        self.rooms = rooms
        self.window_s = window_s
        self.on_sent = on_sent
        self.max_bytes = max_bytes
        self._open: dict[str, _Window] = {}
        self._started: dict[str, float] = {}  # when each room's last packet started (loop time)
        self._flushes: set[asyncio.Task[None]] = set()
        self._packet_events = metrics.histogram(metrics.CHAT_FANOUT_PACKET_EVENTS)

    async def send(self, room: str, event: ChatMessageEvent | ChatRemovedEvent) -> bool:
        """Send `event` to everyone in `room` with the others of its window; True once its
        packet was sent, False when the room does not exist; raises `DeliveryFailed`."""
        if self.window_s <= 0:
            sent = await self.rooms.send(room, event)
            self._packet_events.record(1)
            if sent:
                await self.on_sent(room, *_message_ids([event]))
            return sent
        window = self._open.get(room)
        if window is None:
            window = self._open[room] = _Window()
            task = asyncio.create_task(
                self._close_later(room, window, self._wait_s(room)), name=f"fanout {room}"
            )
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        waiting: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        window.events.append(event)
        window.waiting.append(waiting)
        return await waiting

    def _wait_s(self, room: str) -> float:
        """How long a window opening now stays open: 0 for a quiet room, else until a window
        after the room's previous packet started."""
        started = self._started.get(room)
        if started is None:
            return 0.0
        wait = started + self.window_s - asyncio.get_running_loop().time()
        if wait <= 0:
            del self._started[room]  # quiet again: forget it (rooms come and go)
            return 0.0
        return wait

    async def _close_later(self, room: str, window: _Window, wait_s: float) -> None:
        try:
            await asyncio.sleep(wait_s)  # 0: one turn of the loop, for events of the same turn
            # Closed before the sends: an event arriving from now on opens the next window
            # (sent after this one, or alongside it: readers order messages by seq).
            del self._open[room]
            self._started[room] = asyncio.get_running_loop().time()
            await self._send_window(room, window)
        finally:
            if self._open.get(room) is window:
                del self._open[room]
            for waiting in window.waiting:  # cancelled (service stopping): no ack, redelivered
                if not waiting.done():
                    waiting.cancel()

    async def _send_window(self, room: str, window: _Window) -> None:
        order = packet_order(window.events)
        encoded = [window.events[i].to_json() for i in order]
        for chunk in pack([len(data) for data in encoded], self.max_bytes):
            members = [window.waiting[order[i]] for i in chunk]
            packet = encoded[chunk[0]] if len(chunk) == 1 else batch_json(encoded[i] for i in chunk)
            try:
                sent = await self.rooms.send(room, packet)
                if sent:
                    await self.on_sent(room, *_message_ids(window.events[order[i]] for i in chunk))
            except Exception as error:  # the packet's handlers raise it (no ack: redelivered)
                for waiting in members:
                    if not waiting.done():
                        waiting.set_exception(error)
                continue
            self._packet_events.record(len(chunk))
            for waiting in members:
                if not waiting.done():
                    waiting.set_result(sent)

    async def aclose(self) -> None:
        """Cancel the windows still open (their handlers are cancelled too: no ack)."""
        for task in list(self._flushes):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._flushes, return_exceptions=True)


def _message_ids(events: Iterable[FanoutEvent]) -> list[str]:
    return [event.message.id for event in events if isinstance(event, ChatMessageEvent)]
