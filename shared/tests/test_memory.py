"""The memory store against a real Redis, with a fake clock: caps, retention, forgetting."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from livestage.identity import platform_identity, viewer_identity
from livestage.kv import connect_redis
from livestage.memory import (
    MAX_FACT_CHARS,
    MemoryCaps,
    MemoryCard,
    MemoryStore,
    card_key,
    erased_key,
    memory_key_of,
)
from livestage.schemas import ChatMessage
from livestage.settings import RedisSettings

START_S = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START_S

    def __call__(self) -> float:
        return self.now

    def advance_days(self, days: float) -> None:
        self.now += days * 86_400

    @property
    def ms(self) -> int:
        return int(self.now * 1000)


@pytest.fixture
async def redis(redis_server: Any) -> AsyncIterator[Any]:
    client = connect_redis(RedisSettings(url=redis_server.url))
    yield client
    await client.aclose()


def new_tag() -> str:
    return uuid.uuid4().hex[:16]


def said(
    clock: FakeClock, tag: str, body: str, name: str = "Marta", *, identity: str = ""
) -> ChatMessage:
    return ChatMessage(
        id=uuid.uuid4().hex,
        room="livestage",
        author_identity=identity or viewer_identity(tag, "0a1b2c3d"),
        author_name=name,
        avatar="fox",
        body=body,
        kind="viewer",
        created_at=clock.ms,
    )


async def asks_and_tells(
    store: MemoryStore, clock: FakeClock, tag: str, body: str, fact: str, topic: str
) -> ChatMessage:
    """Record a question with a topic from `tag`, and a fact stated in it."""
    message = said(clock, tag, body)
    await store.record_message(message, question=True, topics=[topic])
    await store.add_facts(tag, [fact], message_id=message.id, at=message.created_at)
    return message


async def keys_of(redis: Any, key: str) -> list[str]:
    return sorted([k.decode() async for k in redis.scan_iter(match=f"*{key}*")])


async def test_a_card_remembers_names_visits_questions_answers_topics_and_facts(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    store = MemoryStore(redis, retention_days=180, clock=clock)
    assert await store.card(tag) is None

    first = said(clock, tag, "Will the aurora show up tonight?")
    await store.record_message(first, question=True, topics=["aurora"])
    assert await store.record_show(tag, "livestage:1")
    assert not await store.record_show(tag, "livestage:1")  # once per show
    assert await store.record_answer(tag, first.id, "Maybe after midnight, keep watching!")
    assert not await store.record_answer(tag, "never-asked", "Hm")
    clock.advance_days(7)
    again = said(clock, tag, "I'm back", name="Marta R")
    await store.record_message(again, topics=["Aurora", "cello"])
    await store.add_facts(tag, ["is from Lisbon"], message_id=again.id, at=again.created_at)
    await store.record_show(tag, "livestage:2")

    card = await store.card(tag)
    assert card is not None and card.key == tag
    assert card.names == ["Marta", "Marta R"] and card.name == "Marta R"
    assert card.first_seen == first.created_at and card.last_seen == again.created_at
    assert card.shows.count == 2 and card.shows.last == ["livestage:1", "livestage:2"]
    assert [t.name for t in card.topics] == ["Aurora", "cello"]  # restated: newest place
    (question,) = card.questions
    assert question.text == first.body and question.answer.startswith("Maybe after midnight")
    (fact,) = card.facts
    assert (fact.text, fact.message_id, fact.source) == ("is from Lisbon", again.id, "rules")
    # camelCase on the wire, like livestage.schemas
    wire = card.to_wire()
    assert {"firstSeen", "lastSeen", "questions"} <= wire.keys()
    assert wire["facts"][0]["messageId"] == again.id  # type: ignore[index]
    assert MemoryCard.from_json(card.to_json()) == card
    assert 0 < await redis.ttl(card_key(tag)) <= store.retention_s == 180 * 86_400


async def test_platform_authors_are_keyed_by_platform_identity_and_the_host_not_at_all(
    redis,
) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    store = MemoryStore(redis, retention_days=30, clock=clock)
    user = "UC" + uuid.uuid4().hex[:10]
    identity = platform_identity("youtube", user)
    assert memory_key_of(identity) == identity
    await store.record_message(said(clock, "", "hello from YouTube", identity=identity))
    assert (await store.card(identity)).names == ["Marta"]  # type: ignore[union-attr]
    host = said(clock, "", "hi all", identity="host")
    assert await store.record_message(host) is None
    with pytest.raises(ValueError, match="not a memory key"):
        await store.card("host")


async def test_facts_are_deduplicated_and_capped_oldest_first(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    store = MemoryStore(redis, retention_days=180, caps=MemoryCaps(facts=3), clock=clock)
    await store.record_message(said(clock, tag, "hi"))
    for index in range(5):
        clock.advance_days(1)
        await store.add_facts(
            tag, [f"plays instrument {index}"], message_id=f"m{index}", at=clock.ms
        )
    card = await store.card(tag)
    assert [f.text for f in card.facts] == [f"plays instrument {i}" for i in (2, 3, 4)]  # type: ignore[union-attr]

    clock.advance_days(1)  # restating an old fact (any case, a full stop) moves it, once
    await store.add_facts(
        tag, ["Plays instrument 2.", "plays instrument 2"], message_id="m9", at=clock.ms
    )
    card = await store.card(tag)
    assert [f.text for f in card.facts] == [
        "plays instrument 3",
        "plays instrument 4",
        "plays instrument 2",
    ]  # type: ignore[union-attr]
    assert card.facts[-1].message_id == "m9"  # type: ignore[union-attr]


async def test_the_card_fits_its_byte_cap_by_dropping_the_oldest(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    caps = MemoryCaps(facts=50, questions=50, topics=50, max_bytes=2048)
    store = MemoryStore(redis, retention_days=180, caps=caps, clock=clock)
    for index in range(30):
        clock.advance_days(0.01)
        message = said(clock, tag, f"question number {index} " + "x" * 100 + "?")
        await store.record_message(message, question=True, topics=[f"topic {index}"])
        await store.add_facts(
            tag, [f"fact {index} " + "y" * 80], message_id=message.id, at=clock.ms
        )
    stored = await redis.get(card_key(tag))
    assert len(stored) <= 2048
    card = await store.card(tag)
    assert card is not None and card.facts and card.questions
    assert card.facts[-1].text.startswith("fact 29") and card.questions[-1].text.startswith(
        "question number 29"
    )
    assert not card.facts[0].text.startswith("fact 0 ")


async def test_retention_drops_old_facts_and_questions_on_read_and_write(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    store = MemoryStore(redis, retention_days=10, clock=clock)
    await asks_and_tells(
        store, clock, tag, "What is the best telescope?", "is from Lisbon", "telescopes"
    )
    clock.advance_days(6)
    recent = said(clock, tag, "I'm back")
    await store.record_message(recent)
    await store.add_facts(tag, ["plays the cello"], message_id=recent.id, at=recent.created_at)

    clock.advance_days(5)  # 11 days after the first message, 5 after the second
    card = await store.card(tag)
    assert card is not None
    assert [f.text for f in card.facts] == ["plays the cello"]
    assert card.questions == [] and card.topics == []
    await store.record_message(said(clock, tag, "still here"))  # a write drops them too
    raw = MemoryCard.from_json(await redis.get(card_key(tag)))
    assert [f.text for f in raw.facts] == ["plays the cello"] and raw.questions == []

    clock.advance_days(11)  # not seen for the whole retention: nothing is remembered
    assert await store.card(tag) is None
    fresh = await store.record_message(said(clock, tag, "hello again"))
    assert fresh is not None and fresh.facts == [] and fresh.first_seen == clock.ms


async def test_forget_leaves_only_the_erasure_record(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    store = MemoryStore(redis, retention_days=180, clock=clock)
    message = await asks_and_tells(
        store, clock, tag, "I'm from Lisbon, when is the next show?", "is from Lisbon", "shows"
    )
    await store.record_show(tag, "livestage:1")
    assert await keys_of(redis, tag) == [card_key(tag)]

    clock.advance_days(1)
    erased = await store.forget(tag)
    assert await keys_of(redis, tag) == [erased_key(tag)]  # SCAN: nothing else of theirs
    assert await redis.get(erased_key(tag)) == str(erased).encode() == str(clock.ms).encode()
    assert 0 < await redis.ttl(erased_key(tag)) <= store.retention_s
    assert await store.card(tag) is None and await store.erased_at(tag) == erased

    # work still in flight about earlier messages brings nothing back
    assert (
        await store.add_facts(tag, ["is from Lisbon"], message_id=message.id, at=message.created_at)
        is None
    )
    assert await store.record_message(message, question=True) is None
    assert not await store.record_answer(tag, message.id, "Next Friday!")
    assert await keys_of(redis, tag) == [erased_key(tag)]

    clock.advance_days(1)  # what they say afterwards starts a new card: a newcomer again
    card = await store.record_message(said(clock, tag, "hi, I'm new here"))
    assert card is not None and card.shows.count == 0 and card.empty


async def test_bad_or_oversized_input_is_refused_before_anything_is_written(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    store = MemoryStore(redis, retention_days=180, clock=clock)
    await store.record_message(said(clock, tag, "hi"))
    before = await redis.get(card_key(tag))
    for bad in ("x" * (MAX_FACT_CHARS + 1), "", "two\nlines", "bidi \u202e trick", " padded"):
        with pytest.raises(ValidationError):
            await store.add_facts(tag, ["is from Lisbon", bad], message_id="m1", at=clock.ms)
    with pytest.raises(ValidationError):
        await store.add_facts(tag, ["is from Lisbon"], message_id="bad id!", at=clock.ms)
    with pytest.raises(ValidationError):
        await store.add_facts(tag, ["is from Lisbon"], message_id="m1", at=12)  # not epoch ms
    with pytest.raises(ValidationError):
        await store.record_show(tag, "no spaces allowed")
    for key in ("viewer_abc", "Not-A-Tag", "discord:123", "a" * 40):
        with pytest.raises(ValueError, match="not a memory key"):
            await store.add_facts(key, ["is from Lisbon"], message_id="m1", at=clock.ms)
    assert await redis.get(card_key(tag)) == before
    with pytest.raises(ValueError):
        MemoryCaps(max_bytes=100)
    with pytest.raises(ValueError):
        MemoryStore(redis, retention_days=0)
    # topics are cleaned and cut, never refused; an answer is cut to fit
    message = said(clock, tag, "what about it?")
    card = await store.record_message(message, question=True, topics=["  a\u200b  " + "long " * 30])
    assert card is not None and len(card.topics[-1].name) <= 48
    assert await store.record_answer(tag, message.id, "word " * 200)
    assert len((await store.card(tag)).questions[-1].answer) <= 300  # type: ignore[union-attr]


async def test_concurrent_writes_to_one_card_all_land(redis) -> None:  # type: ignore[no-untyped-def]
    clock, tag = FakeClock(), new_tag()
    store = MemoryStore(redis, retention_days=180, caps=MemoryCaps(facts=40), clock=clock)
    await store.record_message(said(clock, tag, "hi"))
    await asyncio.gather(
        *(
            store.add_facts(tag, [f"fact {index}"], message_id=f"m{index}", at=clock.ms + index)
            for index in range(12)
        )
    )
    card = await store.card(tag)
    assert sorted(f.text for f in card.facts) == sorted(f"fact {i}" for i in range(12))  # type: ignore[union-attr]
