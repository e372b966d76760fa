"""Batched fan-out: a room's chat events go out in as few LiveKit data packets as keep it live.

A handler hands its event (a message it has just stored, or a removal) to `Fanout.send` and
waits. Each room has at most one packet in flight, and packets of a room go out one after the
other (in the order their events were gathered):

- a room with no packet in flight sends at once (with whatever arrived in the same turn of the
  event loop): a lone message is never held back;
- events that arrive while a packet of the room is in flight gather and go together in the
  next packet, as soon as the one in flight returns (natural batching: the slower the sends,
  the bigger the packets);
- `CHAT_FANOUT_WINDOW_MS` (W) with `CHAT_FANOUT_PACKETS` (N) is the gathering bound under load:
  a room sends at most N packets in any W. A room that reaches the bound is busy: its next
  packet starts W after the packet N back started, and from then on it sends one packet per W
  (W after the previous one started) with everything it got meanwhile, until a packet carries
  fewer than N events (a window's worth fits the bound again) or nothing comes for a window.
  So a room at a chat pace (50 msg/s is 2.5 messages per 50 ms) sends each message alone and
  at once, while a busy one (200 msg/s, a backlog after moderation paused) sends 1/W packets a
  second, each carrying what gathered: viewers decode a few big packets, not thousands.

A packet's events are ordered (`decisions.packet_order`: messages by their approval `seq`),
packed under LiveKit's reliable packet size (`decisions.packets`, more than one packet when they
do not fit) and sent; each waiting handler then learns how its packet fared: True (sent),
False (the room does not exist: nobody to deliver to) or the `DeliveryFailed` of its packet, so
it acks only after its packet was sent (and its messages handed to `on_sent`, which marks them
sent) and a failure is redelivered. A packet of one event is that event itself (the packet types
readers have always known); more make a `ChatBatchEvent`.

With a window of 0 each event is its own packet, sent at once, several in flight (the behaviour
before batching). Rejections go to their author alone and never pass through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from livestage import metrics
from livestage.schemas import ChatMessageEvent, ChatRemovedEvent

from .decisions import MAX_PACKET_BYTES, FanoutEvent, packet_order, packets
from .room import RoomGateway

log = logging.getLogger(__name__)


@dataclass
class _Window:
    """The events gathered for a room's next packet, each with its waiting handler."""

    events: list[FanoutEvent] = field(default_factory=list)
    waiting: list[asyncio.Future[bool]] = field(default_factory=list)


Sent = Callable[..., Awaitable[object]]
"""Called as `on_sent(room, *message_ids)` with the messages of a packet once it was sent
(before its handlers hear of it): chat-history marks them sent with the room's next store."""


async def _nothing(room: str, *message_ids: str) -> None:
    return None


class Fanout:
    """Sends a room's events at once when none of its packets is in flight, else together in
    its next packet; at most `packets` packets of a room start within any `window_s`."""

    def __init__(
        self,
        rooms: RoomGateway,
        window_s: float,
        *,
        packets: int = 4,
        on_sent: Sent = _nothing,
        max_bytes: int = MAX_PACKET_BYTES,
        deflate: bool = True,
    ) -> None:
        self.rooms = rooms
        self.window_s = window_s
        self.packets = packets
        self.on_sent = on_sent
        self.max_bytes = max_bytes
        self.deflate = deflate  # batches go compressed when that is smaller
        self._open: dict[str, _Window] = {}  # what each room gathers for its next packet
        self._senders: dict[str, asyncio.Task[None]] = {}  # a task per room with work to send
        self._starts: dict[str, deque[float]] = {}  # a room's last `packets` starts (loop time)
        self._busy: set[str] = set()  # rooms sending one packet per window
        self._packet_events = metrics.histogram(metrics.CHAT_FANOUT_PACKET_EVENTS)

    async def send(self, room: str, event: ChatMessageEvent | ChatRemovedEvent) -> bool:
        """Send `event` to everyone in `room` with the others of its packet; True once its
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
        if room not in self._senders:
            self._senders[room] = asyncio.create_task(self._send_room(room), name=f"fanout {room}")
        waiting: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        window.events.append(event)
        window.waiting.append(waiting)
        return await waiting

    def _wait_s(self, room: str) -> float:
        """How long the room's next packet waits: for a busy room, until a window after its
        previous packet started; else 0 unless `packets` of its packets started within the
        last window (then the room is busy from now on, and waits for the first of them)."""
        starts = self._starts.get(room)
        if starts is None:
            return 0.0
        now = asyncio.get_running_loop().time()
        if room in self._busy:
            return max(0.0, starts[-1] + self.window_s - now)
        if len(starts) < self.packets or (wait := starts[0] + self.window_s - now) <= 0:
            return 0.0
        self._busy.add(room)
        return wait

    async def _send_room(self, room: str) -> None:
        """Send what the room gathers, a packet at a time, until it has nothing left."""
        loop = asyncio.get_running_loop()
        window: _Window | None = None
        try:
            await asyncio.sleep(0)  # one turn of the loop, for events of the same turn
            while True:
                if (wait_s := self._wait_s(room)) > 0:
                    await asyncio.sleep(wait_s)  # at its bound: what comes meanwhile joins
                window = self._open.pop(room, None)
                if window is None:
                    return  # nothing came while the last packet was in flight: idle again
                starts = self._starts.setdefault(room, deque(maxlen=self.packets))
                starts.append(loop.time())
                await self._send_window(room, window)
                if len(window.events) < self.packets:
                    self._busy.discard(room)  # a window's worth fits the bound again
                window = None
        finally:
            # No await from the last look at `_open` to here: an event arriving later finds no
            # sender and starts one.
            del self._senders[room]
            self._busy.discard(room)
            loop.call_later(self.window_s, self._forget, room)  # rooms come and go
            # cancelled (service stopping) or failed: no ack, redelivered
            for unsent in (window, self._open.pop(room, None)):
                for waiting in unsent.waiting if unsent is not None else ():
                    if not waiting.done():
                        waiting.cancel()

    def _forget(self, room: str) -> None:
        """A window after a room went idle its starts no longer bound anything."""
        if room not in self._senders:
            self._starts.pop(room, None)

    async def _send_window(self, room: str, window: _Window) -> None:
        order = packet_order(window.events)
        encoded = [window.events[i].to_json() for i in order]
        for chunk, packet in packets(encoded, self.max_bytes, deflate=self.deflate):
            members = [window.waiting[order[i]] for i in chunk]
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
        """Cancel the rooms' sending (their waiting handlers are cancelled too: no ack)."""
        senders = list(self._senders.values())
        for task in senders:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*senders, return_exceptions=True)


def _message_ids(events: Iterable[FanoutEvent]) -> list[str]:
    return [event.message.id for event in events if isinstance(event, ChatMessageEvent)]
