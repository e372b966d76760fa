"""History replies are concurrent: one slow read does not hold up the others (#17).

The service runs for real on NATS and Redis; one room's read is held open by a gate in a
`HistoryStore` subclass (the read itself still goes to Redis once the gate opens), which stands
for a slow Redis answer without timing anything.
"""

from __future__ import annotations

import asyncio
import uuid

import nats.errors
import pytest
from redis.asyncio import Redis

from chat_history.store import HistoryStore, Limits
from livestage import subjects
from livestage.bus import Bus, BusUnavailable
from livestage.schemas import ChatMessage, HistoryReply, HistoryRequest
from tests.support.chat import chat_message

from .conftest import HistoryFactory, RunningHistory


class GatedStore(HistoryStore):
    """A store whose reads of the rooms in `held` wait for their gate; `broken` rooms raise."""

    def __init__(self, redis: Redis, limits: Limits) -> None:
        super().__init__(redis, limits)
        self.held: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}
        self.broken: set[str] = set()
        self.log: list[tuple[str, str]] = []  # ("enter" | "exit", room), in order

    def hold(self, room: str) -> asyncio.Event:
        self.entered[room] = asyncio.Event()
        self.held[room] = asyncio.Event()
        return self.held[room]

    async def recent(self, room: str, limit: int, at_ms: int | None = None) -> list[ChatMessage]:
        self.log.append(("enter", room))
        if room in self.broken:
            raise RuntimeError(f"test: reads of {room} fail")
        if room in self.held:
            self.entered[room].set()
            await self.held[room].wait()
        try:
            return await super().recent(room, limit, at_ms)
        finally:
            self.log.append(("exit", room))


def new_room() -> str:
    return "hist-" + uuid.uuid4().hex[:10]


async def ask(bus: Bus, room: str, timeout_s: float = 5.0) -> list[str]:
    reply = await bus.request(
        subjects.history_recent(room),
        HistoryRequest(room=room, limit=50),
        HistoryReply,
        timeout_s=timeout_s,
    )
    return [m.id for m in reply.messages]


async def start_gated(
    start_history: HistoryFactory, **settings: int
) -> tuple[RunningHistory, GatedStore]:
    stores: list[GatedStore] = []

    def make(redis: Redis, limits: Limits) -> GatedStore:
        stores.append(GatedStore(redis, limits))
        return stores[0]

    running = await start_history(store=make, **settings)
    # `serve` subscribes after it set up its consumers: wait until it answers at all.
    async with asyncio.timeout(20):
        while True:
            try:
                await ask(running.bus, new_room(), timeout_s=1.0)
                break
            except BusUnavailable:
                await asyncio.sleep(0.1)  # no responders yet: nothing to await but a retry
    stores[0].log.clear()
    return running, stores[0]


async def seed(history: RunningHistory, room: str) -> list[str]:
    message = chat_message(room, f"in {room}")
    await history.store.store(message)
    return [message.id]


async def test_fast_rooms_are_answered_while_one_read_is_slow(
    start_history: HistoryFactory,
) -> None:
    history, store = await start_gated(start_history)
    slow_room = new_room()
    fast_rooms = [new_room() for _ in range(8)]
    expected = {room: await seed(history, room) for room in [slow_room, *fast_rooms]}
    gate = store.hold(slow_room)

    slow = asyncio.create_task(ask(history.bus, slow_room, timeout_s=30))
    async with asyncio.timeout(10):
        await store.entered[slow_room].wait()

    # Every other viewer gets history while the slow read is still held open.
    answers = await asyncio.gather(*(ask(history.bus, room) for room in fast_rooms))
    assert answers == [expected[room] for room in fast_rooms]
    assert not slow.done()
    assert ("exit", slow_room) not in store.log

    gate.set()
    assert await slow == expected[slow_room]


async def test_concurrency_is_bounded_by_the_setting(start_history: HistoryFactory) -> None:
    history, store = await start_gated(start_history, reply_concurrency=1)
    slow_room, fast_room = new_room(), new_room()
    expected = {room: await seed(history, room) for room in (slow_room, fast_room)}
    gate = store.hold(slow_room)

    slow = asyncio.create_task(ask(history.bus, slow_room, timeout_s=30))
    async with asyncio.timeout(10):
        await store.entered[slow_room].wait()
    fast = asyncio.create_task(ask(history.bus, fast_room, timeout_s=30))
    await history.bus.nc.flush()  # the request is on the server before the gate opens

    gate.set()
    assert await slow == expected[slow_room]
    assert await fast == expected[fast_room]
    # With one slot, the second read starts only after the first one ended.
    assert store.log == [
        ("enter", slow_room),
        ("exit", slow_room),
        ("enter", fast_room),
        ("exit", fast_room),
    ]


@pytest.mark.parametrize("failure", ["store raises", "malformed request"])
async def test_a_failing_request_is_unanswered_and_the_responder_keeps_answering(
    start_history: HistoryFactory, failure: str
) -> None:
    history, store = await start_gated(start_history, reply_concurrency=2)
    bad_room, good_room = new_room(), new_room()
    expected = await seed(history, good_room)

    if failure == "store raises":
        store.broken.add(bad_room)
        with pytest.raises(BusUnavailable):
            await ask(history.bus, bad_room, timeout_s=1.0)
    else:
        with pytest.raises(nats.errors.TimeoutError):
            await history.bus.nc.request(
                subjects.history_recent(bad_room), b"{not json", timeout=1.0
            )

    # The failed request freed its slot: more requests than slots are all answered.
    answers = await asyncio.gather(*(ask(history.bus, good_room) for _ in range(5)))
    assert answers == [expected] * 5
