"""Wiring of chat-history: JetStream consumers in, Redis and LiveKit out, history on request.

| input (all rooms)                | what happens                                                |
|----------------------------------|-------------------------------------------------------------|
| `chat.approved.*` ChatMessage    | store in Redis, then send `ChatMessageEvent` to the room,   |
|                                  | `seq` = the stream sequence of its `chat.approved` message  |
| `host.spoken.*` SpokenTurn       | the same, as a `kind: "host"` line (no `seq`)               |
| `chat.rejected.*` Verdict        | send `ChatRejectedEvent` to the author only                 |
| `chat.removed.*` ChatRemoval     | delete from Redis (tombstone), send `ChatRemovedEvent`      |
| `chat.banned.*` BanEvent         | remove the visitor's participants from the LiveKit room     |
| `history.recent.*` (request)     | reply with the newest messages, or those stored `after` one |

A room's events go out at once when none of its packets is in flight, else together in its
next packet, at most `CHAT_FANOUT_PACKETS` per `CHAT_FANOUT_WINDOW_MS` (`fanout.py`).
Deliveries are handled concurrently (and by several instances), so packets can reach a viewer
out of approval order: `seq` lets the page place each message where it belongs.

Every JetStream message is acked only after its Redis write and its LiveKit send both
succeeded; a crash in between means a redelivery, which finds the message stored (never twice)
but not marked sent, and sends it (viewers drop duplicate ids). The mark itself rides along with
the room's next store (`HistoryStore.mark_sent_soon`): one Redis call per message, not two.
Several instances share the durable consumers and the request subject's queue group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage import metrics, service, subjects
from livestage.bus import Bus, Consumer, Delivery
from livestage.identity import platform_of
from livestage.kv import connect_redis
from livestage.schemas import (
    BanEvent,
    ChatMessage,
    ChatMessageEvent,
    ChatRejectedEvent,
    ChatRemoval,
    ChatRemovedEvent,
    HistoryReply,
    HistoryRequest,
    ModerationVerdict,
    SpokenTurn,
    WireModel,
    now_ms,
)
from livestage.settings import LiveKitSettings, NatsSettings, RedisSettings, TopicSettings

from .decisions import StoreOutcome, message_from_turn, should_send
from .fanout import Fanout
from .room import RoomGateway
from .settings import FanoutSettings, HistorySettings
from .store import HistoryStore, Limits

log = logging.getLogger(__name__)

NAME = "chat-history"
QUEUE_GROUP = "chat-history"
DURABLE_PREFIX = "chat-history-"


@dataclass
class ChatHistory:
    """The handlers, given a store and a room gateway (no NATS: that is `serve`'s job)."""

    store: HistoryStore
    rooms: RoomGateway
    settings: HistorySettings
    fanout: Fanout | None = None
    """Sends to the room; by default one packet per event (no window)."""
    sender: Fanout = field(init=False)

    def __post_init__(self) -> None:
        self.sender = self.fanout or Fanout(
            self.rooms, window_s=0, on_sent=self.store.mark_sent_soon
        )

    async def deliver(self, message: ChatMessage, seq: int = 0) -> StoreOutcome:
        """Store once, then send unless viewers have it already; raises to be retried.

        The store comes first on every path, and a failed store raises (no ack). So when the
        send finds no room (LiveKit restarted and the room is gone until someone rejoins, or
        nobody is watching) the ack that follows loses nothing: LiveKit would not have kept
        the packet for anyone, and every page that (re)joins catches up from history (`after`
        the newest message it holds). The only messages acked without being kept are the
        ones history would not keep anyway (TRIMMED: older than everything kept; EXPIRED;
        REMOVED by an operator). `seq`: the message's place in the room's approval order.
        """
        outcome = await self.store.store(message)
        if outcome is StoreOutcome.PENDING:
            log.info(
                "message %s was stored by an attempt that did not send it: sending", message.id
            )
        if should_send(outcome):
            # marked sent (`HistoryStore.mark_sent_soon`) by the fan-out, a packet at a time
            sent = await self.sender.send(message.room, ChatMessageEvent(message=message, seq=seq))
            if sent and message.kind == "viewer":  # a host line's createdAt: when speech began
                metrics.histogram(metrics.CHAT_DELIVERY_LATENCY).record(
                    max(now_ms() - message.created_at, 0)
                )
        return outcome

    async def on_approved(self, delivery: Delivery[ChatMessage]) -> None:
        if (message := _in_room_of(delivery, delivery.model)) is not None:
            await self.deliver(message, seq=delivery.stream_seq)

    async def on_spoken(self, delivery: Delivery[SpokenTurn]) -> None:
        if (turn := _in_room_of(delivery, delivery.model)) is None:
            return
        message = message_from_turn(turn, self.settings.host_max_chars)
        if message is None:
            log.debug("host turn %s said nothing; not shown in chat", turn.id)
            return
        await self.deliver(message)

    async def on_rejected(self, delivery: Delivery[ModerationVerdict]) -> None:
        verdict = _in_room_of(delivery, delivery.model)
        if verdict is None or verdict.verdict != "rejected":
            return
        packet = ChatRejectedEvent(
            message_id=verdict.message_id,
            reason=verdict.reason or "it did not pass moderation",
        )
        await self.rooms.send(verdict.room, packet, destinations=[verdict.author_identity])

    async def on_removed(self, delivery: Delivery[ChatRemoval]) -> None:
        if (removal := _in_room_of(delivery, delivery.model)) is None:
            return
        existed = await self.store.remove(removal.room, removal.message_id)
        await self.sender.send(removal.room, ChatRemovedEvent(message_id=removal.message_id))
        if delivery.num_delivered == 1:
            metrics.counter(metrics.CHAT_REMOVALS).add(1)
        log.info(
            "removed message %s from %s (%s)",
            removal.message_id,
            removal.room,
            "was in history" if existed else "not in history: kept out from now on",
        )

    async def on_banned(self, delivery: Delivery[BanEvent]) -> None:
        if (ban := _in_room_of(delivery, delivery.model)) is None:
            return
        if platform_of(ban.visitor_tag) is not None:
            # a platform chat author never joins the room; moderation refuses their messages
            log.info("ban in %s of platform user %s: nobody to remove", ban.room, ban.visitor_tag)
            return
        removed = await self.rooms.remove_visitor(ban.room, ban.visitor_tag)
        log.info("ban in %s: removed %d participant(s) %s", ban.room, len(removed), removed)

    async def recent(self, request: HistoryRequest, room: str) -> HistoryReply:
        if request.room != room:
            raise ValueError(f"request for room {request.room!r} on the subject of {room!r}")
        if request.after is None:
            return HistoryReply(messages=await self.store.recent(room, request.limit))
        page = await self.store.after(room, request.after, request.limit)
        return HistoryReply(messages=page.messages, more=page.more, gap=page.gap)


R = TypeVar("R", ChatMessage, SpokenTurn, ModerationVerdict, ChatRemoval, BanEvent)


def _in_room_of(delivery: Delivery[Any], model: R) -> R | None:
    """`model` if it belongs to the room its subject names, else None (logged, then acked:
    a publisher bug that no retry can fix)."""
    room = subjects.room_of(delivery.subject)
    if model.room != room:
        log.error(
            "dropping %s for room %r published on %s",
            type(model).__name__,
            model.room,
            delivery.subject,
        )
        return None
    return model


@dataclass
class Consumers:
    """The durable consumers chat-history runs, for the lag gauge."""

    by_name: dict[str, Consumer[Any]] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)

    def observe(self) -> list[tuple[float, dict[str, str]]]:
        return [(float(n), {"consumer": name}) for name, n in self.pending.items()]

    async def poll(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name, consumer in self.by_name.items():
                with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                    self.pending[name] = await consumer.pending()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


async def _answer_history(history: ChatHistory, msg: Msg) -> None:
    try:
        room = subjects.room_of(msg.subject)
        request = HistoryRequest.from_json(msg.data)
        reply = await history.recent(request, room)
    except (ValidationError, ValueError) as error:
        log.warning("bad history request on %s: %s", msg.subject, error)
        return  # the requester times out; the edge only sends valid requests
    except RedisError as error:
        log.warning("history request on %s: Redis unavailable: %r", msg.subject, error)
        return  # the edge answers 503 with Retry-After
    await msg.respond(reply.to_json())


class HistoryResponder:
    """Answers history requests concurrently: each in its own task, at most `limit` at once.

    nats-py runs a subscription's callback for one message after the other, so the callback
    only starts a task (waiting for a free slot first: past the limit, requests wait in the
    subscription's queue). A request that fails is logged and left unanswered (the requester
    times out); it never ends the responder nor delays the others.
    """

    def __init__(self, history: ChatHistory, limit: int) -> None:
        self.history = history
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, msg: Msg) -> None:
        """The subscription's callback: start answering `msg` once a slot is free."""
        await self._slots.acquire()
        task = asyncio.create_task(self._answer(msg), name=f"history {msg.subject}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        try:
            await _answer_history(self.history, msg)
        except Exception:  # one request's failure is that request's only
            log.exception("history request on %s failed", msg.subject)
        finally:
            self._slots.release()

    async def aclose(self, timeout_s: float) -> None:
        """Let the answers in flight finish for up to `timeout_s`, then cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=2)


async def serve(
    bus: Bus,
    redis: Redis,
    stop: asyncio.Event,
    *,
    settings: HistorySettings | None = None,
    livekit: LiveKitSettings | None = None,
    topics: TopicSettings | None = None,
    store: HistoryStore | None = None,
    fanout: FanoutSettings | None = None,
) -> None:
    """Run every consumer and the history responder until `stop` is set."""
    settings = settings or HistorySettings()
    fanout = fanout or FanoutSettings()
    livekit = livekit or LiveKitSettings()
    topics = topics or TopicSettings()
    rooms = RoomGateway(livekit, topics.chat_topic, settings.send_timeout_s)
    store = store or HistoryStore(redis, Limits(settings.max_messages, settings.max_age_s))
    sender = Fanout(
        rooms,
        window_s=fanout.fanout_window_ms / 1000,
        packets=fanout.fanout_packets,
        on_sent=store.mark_sent_soon,
    )
    history = ChatHistory(store, rooms, settings, sender)
    responder = HistoryResponder(history, settings.reply_concurrency)

    # The first redelivery waits longer than a send may take, so a slow send is not duplicated;
    # later ones climb the ladder until the deliveries cover NATS_RETRY_BUDGET_S, after which a
    # message goes to the dead-letter stream (livestage.retry, livestage.deadletter).
    first_wait = settings.send_timeout_s * 2 + 1
    consumers = Consumers()

    async def consume(
        event: tuple[str, str], model: type[WireModel], handler: Callable[[Any], Awaitable[None]]
    ) -> Consumer[Any]:
        name = DURABLE_PREFIX + event[1]
        consumer = await bus.consumer(
            subjects.all_rooms(*event),
            model,
            name,
            backoff_s=(first_wait,),
            max_ack_pending=settings.batch * 4,
        )
        consumers.by_name[name] = consumer
        return consumer

    wiring: list[tuple[tuple[str, str], type[WireModel], Callable[[Any], Awaitable[None]]]] = [
        (("chat", "approved"), ChatMessage, history.on_approved),
        (("host", "spoken"), SpokenTurn, history.on_spoken),
        (("chat", "rejected"), ModerationVerdict, history.on_rejected),
        (("chat", "removed"), ChatRemoval, history.on_removed),
        (("chat", "banned"), BanEvent, history.on_banned),
    ]
    # On SIGTERM the consumers stop fetching and their deliveries in flight get this long to
    # finish (a send may take up to its timeout); what is left is redelivered later.
    drain_s = settings.send_timeout_s + 1
    tasks: list[asyncio.Task[None]] = []
    subscription: Subscription | None = None
    try:
        for event, model, handler in wiring:
            consumer = await consume(event, model, handler)
            tasks.append(
                asyncio.create_task(
                    consumer.run_concurrently(
                        handler, batch=settings.batch, stop=stop, drain_s=drain_s
                    ),
                    name=f"consume {event[0]}.{event[1]}",
                )
            )

        subscription = await bus.nc.subscribe(
            subjects.all_rooms("history", "recent"), queue=QUEUE_GROUP, cb=responder.handle
        )
        metrics.gauge(metrics.NATS_CONSUMER_PENDING, consumers.observe)
        tasks.append(asyncio.create_task(consumers.poll(settings.pending_poll_s, stop)))
        log.info(
            "%s serving: history of %d messages / %d s per room, chat topic %r, fan-out "
            "window %d ms (%d packets)",
            NAME,
            settings.max_messages,
            settings.max_age_s,
            topics.chat_topic,
            fanout.fanout_window_ms,
            fanout.fanout_packets,
        )
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopped and not stop.is_set():
                task.result()  # a consumer loop ended by itself: raise what ended it
    finally:
        stop.set()
        # The loops see `stop` between fetches (1 s) and drain; cancelling is the fallback only
        # (a cancel inside nats-py's fetch can be lost on Python 3.11, see `Consumer.run`).
        _, late = await asyncio.wait(tasks, timeout=drain_s + 2) if tasks else (set(), set())
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=2)
        # Unsubscribe (the durables stay) so that closing the connection has nothing to drain:
        # a fetch cancelled mid-way leaves its inbox queue unfinished, and a drain would wait.
        for consumer in consumers.by_name.values():
            with contextlib.suppress(nats.errors.Error, ValueError):
                await consumer.unsubscribe()
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()
        await responder.aclose(timeout_s=2.0)
        await history.sender.aclose()
        with contextlib.suppress(RedisError):
            await store.flush_marks()
        await rooms.aclose()


async def main(stop: asyncio.Event) -> None:
    """`python -m chat_history`: connect, serve until SIGINT/SIGTERM, close."""
    bus = await service.connect_bus(NAME, stop, NatsSettings())
    if bus is None:
        return
    redis = connect_redis(RedisSettings())
    try:
        await serve(bus, redis, stop)
    finally:
        await bus.close()
        await redis.aclose()
