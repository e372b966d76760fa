"""Batched fan-out: the pure packing (`decisions`), then chat-history's real `serve` with a
window against real NATS, Redis and LiveKit, read by rtc viewers."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_history.decisions import (
    MAX_PACKET_BYTES,
    StoreOutcome,
    batch_json,
    pack,
    packet_order,
    packets,
)
from livestage import subjects
from livestage.schemas import (
    DEFLATED_BATCH_PREFIX,
    ChatBatchEvent,
    ChatMessageEvent,
    ChatRemoval,
    ChatRemovedEvent,
    chat_events_of,
    inflate_packet,
    new_id,
    now_ms,
)
from tests.support.chat import ChatViewer, chat_message
from tests.support.livekit_helpers import LiveKitEndpoint

from .conftest import HistoryFactory
from .test_service import new_room


def message_event(seq: int, body: str = "hello") -> ChatMessageEvent:
    return ChatMessageEvent(message=chat_message("r", body), seq=seq)


def test_a_window_is_sent_by_seq_then_host_lines_then_removals() -> None:
    host = message_event(0, "the host speaks")
    removal = ChatRemovedEvent(message_id=new_id())
    events = [message_event(7), removal, host, message_event(3), message_event(5)]
    ordered = [events[i] for i in packet_order(events)]
    assert [e.seq for e in ordered[:3] if isinstance(e, ChatMessageEvent)] == [3, 5, 7]
    assert ordered[3:] == [host, removal]


@given(
    bodies=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=120),
    max_bytes=st.sampled_from([2_000, 6_000, MAX_PACKET_BYTES]),
)
def test_packets_keep_the_order_and_stay_under_the_size(bodies: list[int], max_bytes: int) -> None:
    events = [message_event(n + 1, "x" * length) for n, length in enumerate(bodies)]
    encoded = [event.to_json() for event in events]
    packets = pack([len(data) for data in encoded], max_bytes)
    assert [position for packet in packets for position in packet] == list(range(len(events)))
    for packet in packets:
        data = encoded[packet[0]] if len(packet) == 1 else batch_json(encoded[i] for i in packet)
        assert len(data) <= max_bytes  # every single event here fits alone
        assert chat_events_of(data) == [events[i] for i in packet]
    # as few packets as the greedy split allows: no two neighbours would have fitted together
    for first, second in zip(packets, packets[1:], strict=False):
        both = batch_json(encoded[i] for i in [*first, second[0]])
        assert len(both) > max_bytes or len(first) >= 500


@given(
    bodies=st.lists(st.integers(min_value=1, max_value=480), min_size=1, max_size=300),
    max_bytes=st.sampled_from([2_000, 6_000, MAX_PACKET_BYTES]),
    deflate=st.booleans(),
)
def test_sent_packets_keep_the_order_stay_under_the_size_and_read_back(
    bodies: list[int], max_bytes: int, deflate: bool
) -> None:
    events = [message_event(n + 1, f"line {n} " + "x" * length) for n, length in enumerate(bodies)]
    encoded = [event.to_json() for event in events]
    sent = packets(encoded, max_bytes, deflate=deflate)
    assert [position for chunk, _ in sent for position in chunk] == list(range(len(events)))
    for chunk, data in sent:
        assert len(data) <= max_bytes or len(chunk) == 1
        if len(chunk) == 1:
            assert data == encoded[chunk[0]]  # a lone event stays readable JSON
        if not deflate:
            assert not data.startswith(DEFLATED_BATCH_PREFIX)
        assert chat_events_of(data) == [events[i] for i in chunk]


def test_a_busy_window_goes_compressed_in_far_fewer_bytes() -> None:
    """200 chat lines of one room: compressed batches carry them in under a third of the bytes
    and in fewer packets than plain batches (keys, room and avatars repeat)."""
    events = [message_event(n + 1, f"chat line {n}: what a play that was!") for n in range(200)]
    encoded = [event.to_json() for event in events]
    plain = packets(encoded, deflate=False)
    compressed = packets(encoded)
    assert all(data.startswith(DEFLATED_BATCH_PREFIX) for _, data in compressed)
    assert 3 * sum(len(data) for _, data in compressed) < sum(len(data) for _, data in plain)
    assert len(compressed) < len(plain)
    assert [e for _, data in compressed for e in chat_events_of(data)] == events


def test_the_batch_json_is_the_models_own() -> None:
    events = [message_event(1), ChatRemovedEvent(message_id=new_id()), message_event(2)]
    assert batch_json(e.to_json() for e in events) == ChatBatchEvent(events=events).to_json()
    assert json.loads(batch_json([events[0].to_json()]))["type"] == "batch"


async def test_a_burst_reaches_viewers_in_few_packets_in_approval_order(
    start_history: HistoryFactory, livekit_server: LiveKitEndpoint
) -> None:
    """40 messages approved at once with a 300 ms window: every viewer gets each once, in fewer
    packets than messages, each stamped with its `chat.approved` stream sequence."""
    room = new_room()
    history = await start_history(fanout_window_ms=300)
    async with ChatViewer.joined(livekit_server, room) as viewer:
        messages = [chat_message(room, f"burst line {n}") for n in range(40)]
        acks = await asyncio.gather(
            *(history.bus.publish(subjects.chat_approved(room), m) for m in messages)
        )
        approval_order = [
            m.id for _, m in sorted(zip((a.seq for a in acks), messages, strict=True))
        ]
        await viewer.wait_until(lambda: set(approval_order) <= set(viewer.message_ids()), 20)
        assert viewer.packets < len(messages)
        assert viewer.shown_ids() == approval_order
        seqs = {
            r.event.message.id: r.event.seq
            for r in viewer.received
            if isinstance(r.event, ChatMessageEvent)
        }
        assert seqs == {m.id: ack.seq for m, ack in zip(messages, acks, strict=True)}
        assert not viewer.invalid
    # each marked sent once its packet went out (a redelivery would not send it again)
    outcomes: set[StoreOutcome] = set()
    for _ in range(200):  # bounded: 10 s
        outcomes = {await history.store.store(m) for m in messages}
        if outcomes == {StoreOutcome.DELIVERED}:
            break
        await asyncio.sleep(0.05)
    assert outcomes == {StoreOutcome.DELIVERED}


async def test_a_removal_in_the_same_window_follows_its_message(
    start_history: HistoryFactory, livekit_server: LiveKitEndpoint
) -> None:
    """A message and its removal stored within one window: the page never shows the message
    after it was told to hide it (the removal comes later in the packet, or the message was
    never sent because the tombstone was first)."""
    room = new_room()
    # one packet per second: after the first message the room is at its bound, so the three
    # that follow gather while it waits out the window
    history = await start_history(fanout_window_ms=1000, fanout_packets=1)
    async with ChatViewer.joined(livekit_server, room) as viewer:
        first = chat_message(room, "first")
        await history.bus.publish(subjects.chat_approved(room), first)
        await viewer.wait_until(lambda: first.id in viewer.message_ids())
        doomed, kept = chat_message(room, "oops"), chat_message(room, "fine")
        await history.bus.publish(subjects.chat_approved(room), doomed)
        removal = ChatRemoval(id=new_id(), room=room, message_id=doomed.id, created_at=now_ms())
        await history.bus.publish(subjects.chat_removed(room), removal)
        await history.bus.publish(subjects.chat_approved(room), kept)
        await viewer.wait_until(
            lambda: doomed.id in viewer.removals() and kept.id in viewer.message_ids()
        )
        events = [r.event for r in viewer.received]
        removed_at = events.index(ChatRemovedEvent(message_id=doomed.id))
        shown_at = [
            i
            for i, e in enumerate(events)
            if isinstance(e, ChatMessageEvent) and e.message.id == doomed.id
        ]
        assert all(i < removed_at for i in shown_at)
        assert viewer.packets < len(events)  # they did share a packet


async def test_without_a_window_each_message_is_its_own_packet(
    start_history: HistoryFactory, livekit_server: LiveKitEndpoint
) -> None:
    room = new_room()
    history = await start_history(fanout_window_ms=0)
    async with ChatViewer.joined(livekit_server, room) as viewer:
        messages = [chat_message(room, f"line {n}") for n in range(10)]
        await asyncio.gather(
            *(history.bus.publish(subjects.chat_approved(room), m) for m in messages)
        )
        await viewer.wait_until(lambda: {m.id for m in messages} <= set(viewer.message_ids()))
        assert viewer.packets == len(viewer.received)


class RecordingRooms:
    """Stands in for the LiveKit side in the pure batching tests: it keeps each packet; a send
    waits for `release` while `hold` is set (a packet in flight)."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    def hold(self) -> None:
        self.release.clear()
        self.in_flight.clear()

    async def send(self, room: str, packet: bytes, destinations: list[str] | None = None) -> bool:
        self.in_flight.set()
        await self.release.wait()
        self.packets.append(packet)
        return True


def seqs_of(packet: bytes) -> list[int | None]:
    return [e.seq if isinstance(e, ChatMessageEvent) else None for e in chat_events_of(packet)]


async def test_an_idle_room_sends_at_once_and_gathers_while_a_packet_is_in_flight() -> None:
    from chat_history.fanout import Fanout

    rooms = RecordingRooms()
    # A window no test waits out: below its bound nothing may wait for it.
    fanout = Fanout(rooms, window_s=60, packets=4)  # type: ignore[arg-type]
    lone = message_event(1)
    assert await asyncio.wait_for(fanout.send("r", lone), 10) is True
    assert rooms.packets == [lone.to_json()]

    rooms.hold()  # the next packet stays in flight until released
    first = asyncio.create_task(fanout.send("r", message_event(2)))
    await asyncio.wait_for(rooms.in_flight.wait(), 10)
    # these come while it is in flight: they go together as soon as it returns
    later = [asyncio.create_task(fanout.send("r", message_event(n))) for n in (4, 3, 5)]
    await asyncio.sleep(0)
    rooms.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, *later), 10) == [True] * 4
    assert [seqs_of(p) for p in rooms.packets] == [[1], [2], [3, 4, 5]]
    await fanout.aclose()


async def test_a_busy_room_sends_its_bound_of_packets_then_gathers_the_window() -> None:
    from chat_history.fanout import Fanout

    rooms = RecordingRooms()
    fanout = Fanout(rooms, window_s=0.3, packets=2)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    # two packets within the window: each at once
    assert await fanout.send("busy", message_event(1)) is True
    assert await fanout.send("busy", message_event(2)) is True
    # the bound is reached: these wait for the window after the first packet and go together
    assert (
        await asyncio.gather(*(fanout.send("busy", message_event(n)) for n in (3, 4, 5)))
        == [True] * 3
    )
    assert loop.time() - started >= 0.3
    assert [seqs_of(p) for p in rooms.packets] == [[1], [2], [3, 4, 5]]
    assert json.loads(inflate_packet(rooms.packets[2]))["type"] == "batch"
    # that packet carried the bound or more: still busy, the next waits a window after it
    # (which started a window or more after the first)
    assert await fanout.send("busy", message_event(6)) is True
    assert loop.time() - started >= 0.6
    assert [seqs_of(p) for p in rooms.packets][3:] == [[6]]
    await fanout.aclose()


async def test_a_room_at_its_bound_holds_up_no_other_and_closing_cancels_its_wait() -> None:
    from chat_history.fanout import Fanout

    rooms = RecordingRooms()
    fanout = Fanout(rooms, window_s=60, packets=1)  # type: ignore[arg-type]
    assert await fanout.send("busy", message_event(1)) is True
    waiting = asyncio.create_task(fanout.send("busy", message_event(2)))  # a minute to wait
    other = message_event(3)
    assert await asyncio.wait_for(fanout.send("other", other), 10) is True
    assert [seqs_of(p) for p in rooms.packets] == [[1], [3]]
    assert not waiting.done()
    await fanout.aclose()  # stopping: the waiting handler is cancelled (no ack: redelivered)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 10)
    assert len(rooms.packets) == 2
