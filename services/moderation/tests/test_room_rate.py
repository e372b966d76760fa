"""The room-wide cap on approved chat (`room_rate`): counted in Redis, shared by every instance,
per second of the messages' `createdAt`; against real NATS and Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace

from redis.asyncio import Redis

from livestage.safety.normalize import normalize
from livestage.schemas import ChatMessage, ModerationVerdict, now_ms
from moderation.checks.base import Context
from moderation.checks.room_rate import BUSY_REASON, RoomCap, RoomRate
from moderation.pipeline import Pipeline
from moderation.settings import ModerationSettings
from moderation.state import StateStore, strikes_key
from moderation.state import author_key as author_of
from services.moderation.tests.helpers import Harness, chat

CAP = ModerationSettings().room_rate


def test_the_default_cap_is_fifteen_a_second() -> None:
    assert CAP == 15


def test_a_place_past_the_cap_is_busy_without_a_strike() -> None:
    check = RoomRate(3)
    message = chat("room", "hello")

    def verdict(place: int | None) -> object:
        return check.check(message, Context(normalize(message.body), room_place=place))

    assert verdict(None) is None  # not asked yet: another check rejected, or not there yet
    assert verdict(1) is None and verdict(3) is None
    busy = check.check(message, Context(normalize(message.body), room_place=4))
    assert busy is not None and (busy.check, busy.reason, busy.strike) == (
        "room_rate",
        BUSY_REASON,
        False,
    )
    # a show's own limit for the room replaces the check's
    show_cap = Context(normalize(message.body), room_place=4, room_limit=5)
    assert check.check(message, show_cap) is None
    assert check.check(message, replace(show_cap, room_place=6)) == busy


async def test_a_message_keeps_its_place_when_it_comes_again(redis: Redis) -> None:
    store = StateStore(redis, ModerationSettings())
    room = "cap-" + uuid.uuid4().hex[:10]
    at = now_ms()
    first, second = chat(room, "one", created_at=at), chat(room, "two", created_at=at)
    cap = RoomCap(2)
    assert await store.claim_room_place(first, cap) == 1
    assert await store.claim_room_place(second, cap) == 2
    assert await store.claim_room_place(first, cap) == 1  # a redelivery: the same place
    third = chat(room, "three", created_at=at)
    assert await store.claim_room_place(third, cap) == 3
    next_second = chat(room, "four", created_at=(at // 1000 + 1) * 1000)
    assert await store.claim_room_place(next_second, cap) == 1
    # a show's cap counts per minute, apart from the second's places
    minute = RoomCap.per_minute(2)
    assert await store.claim_room_places([(first, minute), (next_second, minute)]) == [1, 2]


async def test_a_burst_from_many_visitors_gets_exactly_the_cap_per_second_across_instances(
    start_harness,  # type: ignore[no-untyped-def]
    default_pipeline: Pipeline,
    redis: Redis,
) -> None:
    """40 visitors in one second of createdAt (plus rude messages, which take no place), judged
    by two instances sharing the work: exactly the cap approved, the rest told the room is busy;
    the next second has room again."""
    first: Harness = await start_harness(default_pipeline, instance="one")
    second: Harness = await start_harness(default_pipeline, room=first.room, instance="two")
    assert second.moderator.settings.durable == first.moderator.settings.durable
    window_start = (now_ms() // 1000 + 1) * 1000
    burst = [
        chat(first.room, f"hello from visitor {n}", created_at=window_start + n * 10)
        for n in range(40)
    ]
    rude = [
        chat(first.room, "fuck this stream", created_at=window_start + 5 + n * 100)
        for n in range(3)
    ]
    later = [
        chat(first.room, f"a calmer hello {n}", created_at=window_start + 1000 + n * 50)
        for n in range(CAP)
    ]
    for message in [*burst[:20], *rude, *burst[20:]]:
        await first.submit(message)

    verdicts = {m.id: await first.verdicts.wait_for(m.id) for m in [*burst, *rude]}
    approved = [m for m in burst if isinstance(verdicts[m.id], ChatMessage)]
    busy = [verdicts[m.id] for m in burst if isinstance(verdicts[m.id], ModerationVerdict)]
    assert len(approved) == CAP, len(approved)
    assert len(busy) == len(burst) - CAP
    for verdict in busy:
        assert isinstance(verdict, ModerationVerdict)
        assert (verdict.checks, verdict.reason) == (["room_rate"], BUSY_REASON)
    for message in rude:  # rejected for what they say; they took no place in the second
        verdict = verdicts[message.id]
        assert isinstance(verdict, ModerationVerdict) and verdict.checks[0] == "blocklist"

    # No strike for a busy room: the visitors told to wait did nothing wrong.
    for message in burst:
        key = strikes_key(first.room, author_of(message.author_identity))
        assert await redis.zcard(key) == 0

    for message in later:
        await first.submit(message)
    for message in later:
        assert isinstance(await first.verdicts.wait_for(message.id), ChatMessage)
