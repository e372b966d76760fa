"""Batched moderation: a fetch's messages are judged together (one read, one write taking the
room places, verdicts published together), and the per-visitor and per-room limits count the
batch's messages in order exactly as one-at-a-time handling would; each room under its own cap
(a show's per minute, else the deployment's per second)."""

from __future__ import annotations

import uuid
from itertools import zip_longest
from typing import Any

from opentelemetry import context as otel_context
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus, Delivery
from livestage.schemas import (
    ChatMessage,
    ModerationVerdict,
    ShowConfig,
    ShowModerationConfig,
    now_ms,
)
from livestage.shows import ShowStore
from moderation.app import Moderator
from moderation.checks import RecentMessage
from moderation.checks.room_rate import BUSY_REASON, RoomRate
from moderation.pipeline import Pipeline
from moderation.settings import ModerationSettings
from moderation.state import Judged, LoadedState, with_earlier
from services.moderation.tests.conftest import HarnessFactory, without_room_cap
from services.moderation.tests.helpers import Harness, chat, new_author, wait_for_verdicts

WINDOWS = {"recent_window_ms": 30_000, "strike_window_ms": 600_000}
T = 1_800_000_000_000  # an epoch in ms; the times below are offsets from it


def judged(message_id: str, at: int, *, strike: bool = False, mute_until: int = 0) -> Judged:
    return Judged(RecentMessage(message_id, at, f"fp-{message_id}"), strike, mute_until)


def test_earlier_messages_of_the_batch_count_as_if_written_first() -> None:
    message = chat("r", "hello", created_at=T + 100_000)
    loaded = LoadedState(decided=None, recent=(RecentMessage("old", T + 90_000, "x"),), strikes=1)
    state = with_earlier(
        loaded,
        message,
        [
            judged("a", T + 99_000, strike=True),
            judged("far", T + 1_000, strike=True),
            judged("b", T + 100_001),
        ],
        **WINDOWS,
    )
    assert [r.message_id for r in state.recent] == ["old", "a", "b"]  # "far": out of the window
    assert state.strikes == 3  # 1 stored + "a" + "far" (within the 600 s strike window)
    assert state.muted_until_ms == 0


def test_a_mute_in_the_batch_clears_the_strikes_before_it_and_mutes_the_rest() -> None:
    message = chat("r", "hello", created_at=T + 100_000)
    loaded = LoadedState(decided=None, strikes=2)
    earlier = [
        judged("a", T + 99_000, strike=True, mute_until=T + 400_000),
        judged("b", T + 99_500, strike=True),
    ]
    state = with_earlier(loaded, message, earlier, **WINDOWS)
    assert (state.strikes, state.muted_until_ms) == (1, T + 400_000)
    assert with_earlier(loaded, message, [], **WINDOWS) is loaded


def test_a_message_never_counts_itself() -> None:
    message = chat("r", "hello", created_at=T + 100_000, message_id="01J0000000000000000000SAME")
    state = with_earlier(
        LoadedState(decided=None), message, [judged(message.id, T + 100_000)], **WINDOWS
    )
    assert state.recent == ()


async def _queued_then_moderated(
    start_harness: HarnessFactory,
    pipeline: Pipeline,
    bus: Bus,
    messages: list[ChatMessage],
    room: str,
    **settings: object,
) -> tuple[list[ChatMessage], list[ModerationVerdict]]:
    """Publish `messages` before any moderator consumes `room` (so fetches bring them in
    batches), then start one and collect every verdict from the stream."""
    for message in messages:
        await bus.publish(subjects.chat_submitted(room), message)
    harness: Harness = await start_harness(pipeline, room=room, **settings)
    return await wait_for_verdicts(harness.bus, room, len(messages), within_s=30)


async def test_a_flood_in_one_batch_gets_exactly_the_limit_through_in_order(
    start_harness: HarnessFactory, default_pipeline: Pipeline, bus: Bus
) -> None:
    room = "mod-" + uuid.uuid4().hex[:12]
    author, start = new_author(), now_ms()
    flood = [
        chat(room, f"line number {n} of many", author=author, created_at=start + n)
        for n in range(8)
    ]
    repeat = [
        chat(room, "the very same line", author=new_author(), created_at=start + n)
        for n in range(2)
    ]
    twin_author = new_author()
    twins = [
        chat(room, "say it twice", author=twin_author, created_at=start + 10 + n) for n in range(2)
    ]
    approved, rejected = await _queued_then_moderated(
        start_harness,
        without_room_cap(default_pipeline),
        bus,
        [*flood, *repeat, *twins],
        room,
        flood_max_messages=5,
        batch=64,
    )
    approved_ids = {m.id for m in approved}
    assert [m.id in approved_ids for m in flood] == [True] * 5 + [False] * 3
    assert {
        v.message_id: v.checks[0] for v in rejected if v.message_id in {m.id for m in flood}
    } == {m.id: "flood" for m in flood[5:]}
    assert all(m.id in approved_ids for m in repeat)  # two authors: not a repeat
    assert twins[0].id in approved_ids
    (twin_verdict,) = [v for v in rejected if v.message_id == twins[1].id]
    assert twin_verdict.checks[0] == "duplicate"
    assert len(approved) + len(rejected) == 12  # one verdict each


async def test_the_room_cap_goes_to_the_first_of_the_batch(
    start_harness: HarnessFactory, default_pipeline: Pipeline, bus: Bus
) -> None:
    room = "mod-" + uuid.uuid4().hex[:12]
    second = (now_ms() // 1000) * 1000  # one second of createdAt
    messages = [
        chat(room, f"hello there {n}", author=new_author(), created_at=second + n) for n in range(7)
    ]
    capped = Pipeline(
        [RoomRate(3) if isinstance(c, RoomRate) else c for c in default_pipeline.checks]
    )
    approved, rejected = await _queued_then_moderated(start_harness, capped, bus, messages, room)
    assert [m.id for m in approved] == [m.id for m in messages[:3]]  # in order, on the stream
    assert sorted(v.message_id for v in rejected) == sorted(m.id for m in messages[3:])
    assert {v.reason for v in rejected} == {BUSY_REASON}


async def test_one_batch_caps_each_room_by_its_show_cap_or_the_default(
    default_pipeline: Pipeline, bus: Bus, redis: Redis
) -> None:
    """Two rooms in one batch: the plain room is held to the deployment's cap (3 per second
    here), the show's room to its own (`roomRate` 2 per minute), through the same places in the
    same round trip; each in batch order."""
    plain_room, show_room = ("mod-" + uuid.uuid4().hex[:12] for _ in range(2))
    store = ShowStore(redis)
    at = now_ms()
    await store.create(
        ShowConfig(
            room=show_room,
            title="Quiz",
            moderation=ShowModerationConfig(room_rate=2),
            created_at=at,
            updated_at=at,
        )
    )
    try:
        capped = Pipeline(
            [RoomRate(3) if isinstance(c, RoomRate) else c for c in default_pipeline.checks]
        )
        moderator = Moderator(bus, redis, capped, ModerationSettings(), instance="two-rooms")
        minute = (now_ms() // 60_000) * 60_000
        plain = [  # one second: 3 of 5 through
            chat(plain_room, f"hello plain {n}", author=new_author(), created_at=minute + n)
            for n in range(5)
        ]
        show = [  # two seconds of one minute: the per-second cap would let all 4 through
            chat(show_room, f"hello show {n}", author=new_author(), created_at=minute + 700 * n)
            for n in range(4)
        ]
        batch = [m for pair in zip_longest(plain, show) for m in pair if m is not None]
        # judged as one fetch would bring them (no JetStream handle: nothing here acks)
        no_msg: Any = None
        deliveries = [
            Delivery(m, no_msg, subjects.chat_submitted(m.room), 1, otel_context.get_current())
            for m in batch
        ]
        assert await moderator.handle_batch(deliveries) == [None] * len(batch)

        for room, messages, through in ((plain_room, plain, 3), (show_room, show, 2)):
            approved, rejected = await wait_for_verdicts(bus, room, len(messages), within_s=10)
            assert [m.id for m in approved] == [m.id for m in messages[:through]], room
            assert sorted(v.message_id for v in rejected) == sorted(
                m.id for m in messages[through:]
            )
            assert {(tuple(v.checks), v.reason) for v in rejected} == {
                (("room_rate",), BUSY_REASON)
            }
    finally:
        await store.delete(show_room)
