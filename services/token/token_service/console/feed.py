"""ONE live picture of a room per edge, fed from NATS, fanned out to every open console of it
(`feeds.py` keeps one per show a console has open).

`ConsoleFeed.start(bus)` watches the room's chat (submitted, approved, rejected, removed),
stage (visual, layout), room (show, egress) and host (job, spoken) subjects from
`TOKEN_CONSOLE_BACKLOG_S` ago, so a console opened later still gets a snapshot: however many
consoles are open, the edge holds one watch per subject. What it hears is folded (`fold.py`)
into bounded buffers and put on each stream's bounded queue (`TOKEN_CONSOLE_QUEUE`); a stream
whose queue is full is dropped (the page's EventSource reconnects and gets a fresh snapshot),
so one slow console never holds the others up or grows memory. At most
`TOKEN_CONSOLE_STREAMS` streams are open per replica.

While at least one stream is open, the numbers are computed every `TOKEN_CONSOLE_NUMBERS_S`:
viewers from LiveKit's participant list (viewer identities, agents excluded; one call per
tick for all consoles; the last count stays while LiveKit cannot be asked), spend from the host
agent's Redis keys (`livestage.shows.spend_key` / `spend_cap_key`), the rest from the folds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage import subjects
from livestage.bus import Bus, Observed, Watch
from livestage.schemas import (
    ChatMessage,
    ChatRemoval,
    EgressEvent,
    HostJobEvent,
    ModerationVerdict,
    ShowEvent,
    SpokenTurn,
    StageLayoutEvent,
    StageVisual,
    WireModel,
)
from livestage.shows import Show, ShowStore, spend_cap_key, spend_day, spend_key

from ..livekit_gateway import LiveKitError, LiveKitGateway
from .fold import ChatLog, add_visual, fold_host
from .models import HostStatus, Numbers, ShowStatus, Snapshot
from .numbers import Reactions, VerdictLog, p50, reaction_ms

log = logging.getLogger(__name__)

CREATED_AT_KEPT = 5000
"""`createdAt` of this many recent messages, for the reaction times of replies to them."""


class ConsoleFull(Exception):
    """As many console streams are open as this replica allows."""


@dataclass(eq=False)
class ConsoleStream:
    """One open `GET /api/operator/events`: its queue of (event name, model) to send."""

    queue: asyncio.Queue[tuple[str, WireModel]]
    dropped: bool = False


@dataclass
class ConsoleFeed:
    room: str
    redis: Redis
    gateway: LiveKitGateway
    max_streams: int = 20
    queue_size: int = 256
    numbers_s: float = 5.0
    backlog_s: float = 1800.0
    clock: Callable[[], float] = time.time
    chat: ChatLog = field(default_factory=ChatLog)
    visuals: list[StageVisual] = field(default_factory=list)
    host: HostStatus = field(default_factory=HostStatus)
    egress: EgressEvent | None = None
    verdicts: VerdictLog = field(default_factory=VerdictLog)
    reactions: Reactions = field(default_factory=Reactions)
    _show: Show | None = None
    _viewers: int = 0
    _spend: tuple[float, float] = (0.0, 0.0)
    _created_at: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _streams: set[ConsoleStream] = field(default_factory=set)
    _watches: list[Watch] = field(default_factory=list)
    _numbers_task: asyncio.Task[None] | None = None
    started: bool = False
    """Following NATS (`start` done, `stop` not since)."""

    # ---- following NATS ----------------------------------------------------------------------

    async def start(self, bus: Bus) -> None:
        await self._stop_watches()  # a start that failed half-way is being retried
        since = self.clock() - self.backlog_s
        room = self.room
        self._watches += [
            await bus.watch(
                subjects.chat_submitted(room), ChatMessage, self._on_submitted, start=since
            ),
            await bus.watch(
                subjects.chat_approved(room), ChatMessage, self._on_approved, start=since
            ),
            await bus.watch(
                subjects.chat_rejected(room), ModerationVerdict, self._on_rejected, start=since
            ),
            await bus.watch(
                subjects.chat_removed(room), ChatRemoval, self._on_removed, start=since
            ),
            await bus.watch(subjects.stage_visual(room), StageVisual, self._on_visual, start=since),
            await bus.watch(
                subjects.stage_layout(room), StageLayoutEvent, self._on_layout, start=since
            ),
            await bus.watch(subjects.room_show(room), ShowEvent, self._on_show, start=since),
            await bus.watch(subjects.room_egress(room), EgressEvent, self._on_egress, start=since),
            await bus.watch(subjects.host_job(room), HostJobEvent, self._on_host_job, start=since),
            await bus.watch(subjects.host_spoken(room), SpokenTurn, self._on_spoken, start=since),
        ]
        self.started = True

    async def stop(self) -> None:
        if self._numbers_task is not None:
            self._numbers_task.cancel()
        await self._stop_watches()

    async def _stop_watches(self) -> None:
        self.started = False
        for watch in self._watches:
            await watch.stop()
        self._watches.clear()

    def _send(self, event: str, model: WireModel | None) -> None:
        if model is None:
            return
        for stream in list(self._streams):
            try:
                stream.queue.put_nowait((event, model))
            except asyncio.QueueFull:
                log.warning("a console stream fell %d events behind; dropping it", self.queue_size)
                stream.dropped = True
                self._streams.discard(stream)

    def _remember(self, message: ChatMessage) -> None:
        self._created_at[message.id] = message.created_at
        while len(self._created_at) > CREATED_AT_KEPT:
            self._created_at.popitem(last=False)

    async def _on_submitted(self, observed: Observed[ChatMessage]) -> None:
        self._remember(observed.model)
        self._send("chat", self.chat.submitted(observed.model))

    async def _on_approved(self, observed: Observed[ChatMessage]) -> None:
        self._remember(observed.model)
        self.verdicts.add(observed.model.id, int(observed.stored_at * 1000), rejected=False)
        self._send("chat", self.chat.approved(observed.model))

    async def _on_rejected(self, observed: Observed[ModerationVerdict]) -> None:
        verdict = observed.model
        self.verdicts.add(verdict.message_id, int(observed.stored_at * 1000), rejected=True)
        self._send("chat", self.chat.rejected(verdict))

    async def _on_removed(self, observed: Observed[ChatRemoval]) -> None:
        self._send("chat", self.chat.removed(observed.model))

    async def _on_visual(self, observed: Observed[StageVisual]) -> None:
        self.visuals = add_visual(self.visuals, observed.model)
        self._send("visual", observed.model)

    async def _on_layout(self, observed: Observed[StageLayoutEvent]) -> None:
        current = self._show or Show(room=self.room)
        self._show = Show(room=self.room, state=current.state, layout=observed.model.layout)
        self._send("layout", observed.model)

    async def _on_show(self, observed: Observed[ShowEvent]) -> None:
        current = self._show or Show(room=self.room)
        self._show = Show(room=self.room, state=observed.model.state, layout=current.layout)
        self._send("show", observed.model)

    async def _on_egress(self, observed: Observed[EgressEvent]) -> None:
        self.egress = observed.model
        self._send("egress", observed.model)

    async def _on_host_job(self, observed: Observed[HostJobEvent]) -> None:
        folded = fold_host(self.host, observed.model)
        if folded != self.host:
            self.host = folded
            self._send("host", folded)

    async def _on_spoken(self, observed: Observed[SpokenTurn]) -> None:
        delay = reaction_ms(observed.model, self._created_at.get)
        if delay is not None:
            self.reactions.add(observed.model.id, delay)

    # ---- streams -----------------------------------------------------------------------------

    def subscribe(self) -> ConsoleStream:
        """A new stream (its snapshot comes from `snapshot()`); ConsoleFull at the cap."""
        if len(self._streams) >= self.max_streams:
            raise ConsoleFull(
                f"{self.max_streams} console streams are open on this edge; close one, or "
                "raise TOKEN_CONSOLE_STREAMS"
            )
        stream = ConsoleStream(asyncio.Queue(self.queue_size))
        self._streams.add(stream)
        if self._numbers_task is None or self._numbers_task.done():
            self._numbers_task = asyncio.create_task(self._send_numbers(), name="console numbers")
        return stream

    def unsubscribe(self, stream: ConsoleStream) -> None:
        self._streams.discard(stream)
        if not self._streams and self._numbers_task is not None:
            self._numbers_task.cancel()
            self._numbers_task = None

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def snapshot(self) -> Snapshot:
        """Everything as of now. Taken right after `subscribe()`, with no await between them
        and the buffers read first, so nothing heard meanwhile is missed (it is queued)."""
        chat, visuals, host, egress = (
            self.chat.entries(),
            list(self.visuals),
            self.host,
            self.egress,
        )
        try:
            show = await ShowStore(self.redis).get(self.room)
        except RedisError as error:
            log.warning("console: show state unavailable (%r); using the last event", error)
            show = self._show or Show(room=self.room)
        return Snapshot(
            room=self.room,
            show=ShowStatus(state=show.state, layout=show.layout),
            chat=chat,
            visuals=visuals,
            host=host,
            egress=egress,
            numbers=await self.numbers(),
        )

    # ---- numbers -----------------------------------------------------------------------------

    async def numbers(self) -> Numbers:
        now = self.clock()
        self._viewers = await self._count_viewers()
        self._spend = await self._read_spend(now)
        rate = self.verdicts.rate(int(now * 1000))
        samples = self.reactions.samples
        return Numbers(
            viewers=self._viewers,
            chat_per_minute=rate.per_minute,
            rejected_share=rate.rejected_share,
            spend_today_usd=self._spend[0],
            spend_cap_usd=self._spend[1],
            reaction_p50_ms=p50(samples),
            reactions=len(samples),
        )

    async def _count_viewers(self) -> int:
        try:
            return await self.gateway.count_viewers(self.room)
        except LiveKitError as error:
            log.warning("console: viewers not counted (%s); showing the last count", error)
            return self._viewers

    async def _read_spend(self, now: float) -> tuple[float, float]:
        try:
            spent, cap = await self.redis.mget(
                spend_key(self.room, spend_day(now)), spend_cap_key(self.room)
            )
        except RedisError as error:
            log.warning("console: spend not read (%r); showing the last figures", error)
            return self._spend
        return float(spent or 0), float(cap or 0)

    async def _send_numbers(self) -> None:
        while True:
            await asyncio.sleep(self.numbers_s)
            try:
                numbers = await self.numbers()
            except Exception:  # the loop must outlive one bad tick; logged in full
                log.exception("console: numbers not computed")
                continue
            self._send("numbers", numbers)
