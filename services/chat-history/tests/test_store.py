"""`HistoryStore` on a real Redis: stored once, ordered, bounded by count and age, removals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat_history.decisions import StoreOutcome
from chat_history.store import HistoryStore, Limits, Page
from livestage.kv import connect_redis
from livestage.schemas import now_ms
from livestage.settings import RedisSettings
from tests.support.chat import chat_message
from tests.support.services import free_port
from tests.support.waiting import until

MAX_AGE_S = 60


@pytest.fixture
async def redis(redis_server) -> AsyncIterator[Redis]:  # type: ignore[no-untyped-def]
    client = connect_redis(RedisSettings(url=redis_server.url))
    yield client
    await client.aclose()


@pytest.fixture
def room() -> str:
    return "store-" + uuid.uuid4().hex[:10]


def store_with(redis: Redis, max_messages: int = 5) -> HistoryStore:
    return HistoryStore(redis, Limits(max_messages=max_messages, max_age_s=MAX_AGE_S))


async def test_a_message_is_stored_once_and_its_send_is_remembered(redis: Redis, room: str) -> None:
    store = store_with(redis)
    message = chat_message(room)
    assert await store.store(message) is StoreOutcome.STORED
    # a redelivery after a crash before the send: stored already, still to be sent
    assert await store.store(message) is StoreOutcome.PENDING
    assert await store.mark_sent(room, message.id)
    assert await store.store(message) is StoreOutcome.DELIVERED
    assert await store.ids(room) == [message.id]
    assert await store.recent(room, 10) == [message]


async def test_history_is_ordered_by_created_at_oldest_first(redis: Redis, room: str) -> None:
    store = store_with(redis)
    now = now_ms()
    late, early, middle = (
        chat_message(room, "late", created_at=now - 1_000),
        chat_message(room, "early", created_at=now - 3_000),
        chat_message(room, "middle", created_at=now - 2_000),
    )
    for message in (late, early, middle):
        await store.store(message)
    assert [m.body for m in await store.recent(room, 10)] == ["early", "middle", "late"]
    assert [m.body for m in await store.recent(room, 2)] == ["middle", "late"]


async def test_beyond_the_count_the_oldest_are_gone(redis: Redis, room: str) -> None:
    store = store_with(redis, max_messages=3)
    now = now_ms()
    messages = [chat_message(room, f"n{n}", created_at=now - 10_000 + n) for n in range(5)]
    for message in messages:
        assert await store.store(message) is StoreOutcome.STORED
    assert await store.ids(room) == [m.id for m in messages[2:]]
    # A late arrival older than everything kept is not kept, and the outcome says so.
    straggler = chat_message(room, "late arrival", created_at=now - 20_000)
    assert await store.store(straggler) is StoreOutcome.TRIMMED
    assert await store.ids(room) == [m.id for m in messages[2:]]
    sent_fields = await redis.hlen(f"livestage:history:{{{room}}}:messages")
    assert sent_fields == 3


async def test_older_than_the_max_age_is_gone_even_without_new_writes(
    redis: Redis, room: str
) -> None:
    store = store_with(redis)
    now = now_ms()
    old = chat_message(room, "old", created_at=now - 50_000)
    fresh = chat_message(room, "fresh", created_at=now - 1_000)
    for message in (old, fresh):
        await store.store(message, at_ms=now)
    assert [m.body for m in await store.recent(room, 10, at_ms=now)] == ["old", "fresh"]
    # 20 s later `old` is past the 60 s age: a read alone forgets it, in Redis too.
    assert [m.body for m in await store.recent(room, 10, at_ms=now + 20_000)] == ["fresh"]
    assert await store.ids(room) == [fresh.id]
    # and a message that is already too old when it arrives is not kept at all
    ancient = chat_message(room, "ancient", created_at=now - 61_000)
    assert await store.store(ancient, at_ms=now) is StoreOutcome.EXPIRED
    assert await store.ids(room) == [fresh.id]


async def test_keys_expire_with_the_max_age(redis: Redis, room: str) -> None:
    store = store_with(redis)
    await store.store(chat_message(room))
    ttl_ms = await redis.pttl(f"livestage:history:{{{room}}}:order")
    assert 0 < ttl_ms <= MAX_AGE_S * 1000


async def test_a_removed_message_is_gone_and_stays_gone(redis: Redis, room: str) -> None:
    store = store_with(redis)
    keep, drop, early = (chat_message(room, body) for body in ("keep", "drop", "early"))
    await store.store(keep)
    await store.store(drop)
    assert await store.remove(room, drop.id) is True
    assert await store.ids(room) == [keep.id]
    assert await store.store(drop) is StoreOutcome.REMOVED  # a redelivery does not bring it back
    # removed before it ever arrived (removal overtook it): kept out too
    assert await store.remove(room, early.id) is False
    assert await store.store(early) is StoreOutcome.REMOVED
    assert await store.recent(room, 10) == [keep]
    assert await store.mark_sent(room, drop.id) == 0


async def test_rooms_are_separate(redis: Redis, room: str) -> None:
    store = store_with(redis)
    other = room + "-other"
    a, b = chat_message(room), chat_message(other)
    await store.store(a)
    await store.store(b)
    assert await store.recent(room, 10) == [a]
    assert await store.recent(other, 10) == [b]


async def test_after_pages_through_what_was_stored_after_a_message_in_storing_order(
    redis: Redis, room: str
) -> None:
    store = store_with(redis, max_messages=50)
    now = now_ms()
    # createdAt does not follow the order of storing (a host line is dated when speech began)
    messages = [chat_message(room, f"n{n}", created_at=now - 1_000 * (n % 3)) for n in range(8)]
    for message in messages:
        await store.store(message)
    first = await store.after(room, messages[1].id, 3)
    assert ([m.body for m in first.messages], first.more, first.gap) == (
        ["n2", "n3", "n4"],
        True,
        False,
    )
    second = await store.after(room, first.messages[-1].id, 3)
    assert ([m.body for m in second.messages], second.more) == (["n5", "n6", "n7"], False)
    assert await store.after(room, messages[-1].id, 3) == Page([], more=False, gap=False)
    # a redelivery keeps the message's place; a removed one is left out of the pages
    assert await store.store(messages[3]) is StoreOutcome.PENDING
    await store.remove(room, messages[4].id)
    rest = await store.after(room, messages[1].id, 10)
    assert [m.body for m in rest.messages] == ["n2", "n3", "n5", "n6", "n7"]


async def test_after_an_unknown_or_trimmed_message_gives_the_newest_and_says_there_is_a_gap(
    redis: Redis, room: str
) -> None:
    store = store_with(redis, max_messages=3)
    now = now_ms()
    messages = [chat_message(room, f"n{n}", created_at=now - 10_000 + n) for n in range(5)]
    for message in messages:
        await store.store(message)
    trimmed = await store.after(room, messages[0].id, 2)
    assert ([m.body for m in trimmed.messages], trimmed.more, trimmed.gap) == (
        ["n3", "n4"],
        False,
        True,
    )
    unknown = await store.after(room, "never-stored", 10)
    assert ([m.body for m in unknown.messages], unknown.gap) == (["n2", "n3", "n4"], True)
    # the oldest kept is a good cursor
    assert [m.body for m in (await store.after(room, messages[2].id, 10)).messages] == ["n3", "n4"]
    await store.remove(room, messages[3].id)
    removed = await store.after(room, messages[3].id, 10)
    assert ([m.body for m in removed.messages], removed.gap) == (["n2", "n4"], True)
    assert await store.after(room + "-empty", "x", 10) == Page([], more=False, gap=True)


async def test_a_packet_of_messages_is_marked_sent_at_once(redis: Redis, room: str) -> None:
    store = store_with(redis)
    first, second, never_stored = chat_message(room), chat_message(room), chat_message(room)
    for message in (first, second):
        await store.store(message)
    assert await store.mark_sent(room, first.id, second.id, never_stored.id) == 2
    assert await store.store(first) is StoreOutcome.DELIVERED
    assert await store.store(second) is StoreOutcome.DELIVERED
    assert await store.store(never_stored) is StoreOutcome.STORED  # marking it did not store it


async def test_a_sent_mark_rides_along_with_the_rooms_next_store(redis: Redis, room: str) -> None:
    """The fan-out's mark costs no Redis call of its own while the room chats: the next store
    of the room writes it first (so a redelivery of the sent message is not sent again), and
    a mark that no store follows is written by itself shortly after."""
    store = store_with(redis)
    first, second, third = chat_message(room), chat_message(room), chat_message(room)
    assert await store.store(first) is StoreOutcome.STORED
    calls: list[str] = []
    run_mark = store._mark_sent

    async def counted(**kwargs: object) -> object:
        calls.append("mark")
        return await run_mark(**kwargs)

    store._mark_sent = counted  # type: ignore[assignment]
    await store.mark_sent_soon(room, first.id)
    assert await store.store(second) is StoreOutcome.STORED
    assert await store.store(first) is StoreOutcome.DELIVERED
    assert calls == []  # carried by the store of `second`

    await store.mark_sent_soon(room, second.id)
    await store.mark_sent_soon(room + "-other", third.id)  # never stored: nothing to mark
    await until(lambda: not store._marks_due and not store._flushes, 5, "the lone marks")
    assert sorted(calls) == ["mark", "mark"]  # one per room
    sent = f"livestage:history:{{{room}}}:sent"
    assert await redis.hexists(sent, second.id)
    assert await store.store(second) is StoreOutcome.DELIVERED
    assert not await redis.exists(f"livestage:history:{{{room}-other}}:sent")


async def test_stores_of_one_turn_go_in_one_call_with_an_outcome_each(
    redis: Redis, room: str
) -> None:
    """A fetched batch handled concurrently: one script call per room, and each message's
    outcome is what storing it alone would give (new, already sent, removed, expired, trimmed
    by the count of the same call, and a second room apart)."""
    store = store_with(redis, max_messages=3)
    now = now_ms()
    sent_before, removed = chat_message(room), chat_message(room)
    await store.store(sent_before)
    await store.mark_sent(room, sent_before.id)
    await store.remove(room, removed.id)
    expired = chat_message(room, created_at=now - (MAX_AGE_S + 5) * 1000)
    oldest = chat_message(room, created_at=now - 30_000)  # trimmed by the newer ones beside it
    fresh = [chat_message(room, created_at=now + 1 + n) for n in range(3)]
    elsewhere = chat_message(room + "-other")
    calls: list[int] = []
    run_script = store._store

    async def counted(**kwargs: object) -> object:
        calls.append(len(kwargs["args"]))  # type: ignore[arg-type]
        return await run_script(**kwargs)

    store._store = counted  # type: ignore[assignment]
    batch = [sent_before, removed, expired, oldest, *fresh, elsewhere]
    outcomes = await asyncio.gather(*(store.store(message) for message in batch))
    assert outcomes == [
        StoreOutcome.DELIVERED,
        StoreOutcome.REMOVED,
        StoreOutcome.EXPIRED,
        StoreOutcome.TRIMMED,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
    ]
    assert sorted(calls) == [5 + 3 * 1, 5 + 3 * 7]  # one call per room
    assert [m.id for m in await store.recent(room, 10)] == [m.id for m in fresh]


async def test_a_failed_store_call_fails_every_message_of_it(room: str) -> None:
    """Redis down: each caller of the shared call raises (its delivery is not acked)."""
    gone = connect_redis(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"))
    store = store_with(gone)
    try:
        outcomes = await asyncio.gather(
            *(store.store(chat_message(room)) for _ in range(3)), return_exceptions=True
        )
    finally:
        await gone.aclose()
    assert len(outcomes) == 3
    assert all(isinstance(outcome, RedisError) for outcome in outcomes), outcomes
