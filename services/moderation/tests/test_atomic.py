"""Stateful verdicts (flood, duplicate) are decided atomically across moderation replicas: a
message is judged and recorded in one Redis transaction, judged again when its visitor's state
changed meanwhile. Against real Redis, and two moderators on their own NATS connections sharing
one durable consumer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

from redis.asyncio import Redis

from livestage.bus import Bus
from livestage.safety.normalize import normalize
from livestage.schemas import ChatMessage, ModerationVerdict, now_ms
from moderation.checks import Context, RecentMessage
from moderation.checks.duplicate import Duplicate
from moderation.checks.flood import Flood
from moderation.pipeline import Decision, Pipeline, StrikeOutcome, strike_outcome
from moderation.settings import ModerationSettings
from moderation.state import (
    LoadedState,
    Recorded,
    StateStore,
    author_key,
    decided_key,
    recent_key,
)
from services.moderation.tests.conftest import without_room_cap
from services.moderation.tests.helpers import Harness, chat, new_author

SETTINGS = ModerationSettings()
ROUNDS = 20


async def _replicas(
    start_harness, default_pipeline: Pipeline, replica_bus: Bus
) -> tuple[Harness, Harness]:  # type: ignore[no-untyped-def]
    """Two moderators on one room sharing its durable, each on its own NATS connection."""
    pipeline = without_room_cap(default_pipeline)
    one: Harness = await start_harness(pipeline, instance="one")
    two: Harness = await start_harness(pipeline, room=one.room, instance="two", on=replica_bus)
    return one, two


async def _deciders(redis: Redis, messages: list[ChatMessage]) -> Counter[str]:
    records = [await redis.get(decided_key(m.room, m.id)) for m in messages]
    return Counter(json.loads(record)["instance"] for record in records)


async def test_simultaneous_copies_on_two_replicas_are_approved_once(
    start_harness,  # type: ignore[no-untyped-def]
    default_pipeline: Pipeline,
    replica_bus: Bus,
    redis: Redis,
) -> None:
    """Two tabs of one visitor send the same line at the same moment, one through each
    connection: in every round exactly one copy is approved, the other is the repeat."""
    one, two = await _replicas(start_harness, default_pipeline, replica_bus)
    rounds = []
    for n in range(ROUNDS):
        author, at = new_author(), now_ms()
        copies = [
            chat(one.room, f"see you all at the show, round {n}", author=author, created_at=at),
            chat(one.room, f"see you all at the show, round {n}", author=author, created_at=at + 1),
        ]
        await asyncio.gather(one.submit(copies[0]), two.submit(copies[1]))
        rounds.append(copies)
    for n, copies in enumerate(rounds):
        verdicts = [await one.verdicts.wait_for(copy.id) for copy in copies]
        approved = [v for v in verdicts if isinstance(v, ChatMessage)]
        rejected = [v for v in verdicts if isinstance(v, ModerationVerdict)]
        assert len(approved) == 1, f"round {n}: {verdicts}"
        assert [v.checks for v in rejected] == [["duplicate"]], f"round {n}: {verdicts}"
    deciders = await _deciders(redis, [copy for copies in rounds for copy in copies])
    assert set(deciders) == {"one", "two"}, deciders  # both replicas took part


async def test_a_burst_of_one_visitor_on_two_replicas_gets_exactly_the_flood_limit(
    start_harness,  # type: ignore[no-untyped-def]
    default_pipeline: Pipeline,
    replica_bus: Bus,
    redis: Redis,
) -> None:
    """N+3 different lines from one visitor at once, spread over both replicas: exactly N
    approved per burst, the rest rejected as a flood."""
    one, two = await _replicas(start_harness, default_pipeline, replica_bus)
    limit = one.moderator.settings.flood_max_messages
    bursts = []
    for n in range(5):
        author, at = new_author(), now_ms()
        burst = [
            chat(one.room, f"line {i} of burst {n}", author=author, created_at=at + i)
            for i in range(limit + 3)
        ]
        await asyncio.gather(*((one, two)[i % 2].submit(m) for i, m in enumerate(burst)))
        bursts.append(burst)
    for n, burst in enumerate(bursts):
        verdicts = [await one.verdicts.wait_for(message.id) for message in burst]
        approved = [v for v in verdicts if isinstance(v, ChatMessage)]
        rejected = [v for v in verdicts if isinstance(v, ModerationVerdict)]
        assert len(approved) == limit, f"burst {n}: {len(approved)} approved"
        assert all("flood" in v.checks for v in rejected), f"burst {n}: {rejected}"
    deciders = await _deciders(redis, [message for burst in bursts for message in burst])
    assert set(deciders) == {"one", "two"}, deciders


# --- StateStore.decide on its own, against Redis ----------------------------------------------


def _judge_with(pipeline: Pipeline, message: ChatMessage, calls: list[LoadedState]):  # type: ignore[no-untyped-def]
    async def judge(state: LoadedState) -> tuple[Decision, StrikeOutcome]:
        calls.append(state)
        context = Context(normalize(message.body), recent=state.recent, strikes=state.strikes)
        decision = pipeline.decide(message, context)
        return decision, strike_outcome(decision, context, message.created_at, SETTINGS)

    return judge


def _room() -> str:
    return "atomic-" + uuid.uuid4().hex[:10]


async def test_a_redelivery_gets_the_recorded_verdict_and_counts_once(redis: Redis) -> None:
    store = StateStore(redis, SETTINGS)
    pipeline = Pipeline([Flood(1, 10.0)])
    message = chat(_room(), "hello there")
    calls: list[LoadedState] = []
    record, fresh = await store.decide(
        message, _judge_with(pipeline, message, calls), with_ban=False, instance="a"
    )
    assert fresh and record.approved and not record.published and len(calls) == 1

    again, fresh = await store.decide(
        message, _judge_with(pipeline, message, calls), with_ban=False, instance="b"
    )
    assert not fresh and again == record and len(calls) == 1  # not judged again
    recent = recent_key(message.room, author_key(message.author_identity))
    assert await redis.zcard(recent) == 1

    await store.mark_published(message, record)
    stored, fresh = await store.decide(
        message, _judge_with(pipeline, message, calls), with_ban=False, instance="b"
    )
    assert not fresh and stored.published and stored.instance == "a"
    ttl = await redis.ttl(decided_key(message.room, message.id))
    assert 0 < ttl <= SETTINGS.decided_ttl_s  # marking it kept the record's expiry


async def test_after_its_record_expired_a_message_is_judged_anew_but_not_counted_twice(
    redis: Redis,
) -> None:
    """With a flood limit of 1, a message that met itself in the visitor's recent messages would
    be its own flood."""
    store = StateStore(redis, SETTINGS)
    pipeline = Pipeline([Flood(1, 10.0)])
    message = chat(_room(), "only once")
    calls: list[LoadedState] = []
    judge = _judge_with(pipeline, message, calls)
    first, _ = await store.decide(message, judge, with_ban=False, instance="a")
    await redis.delete(decided_key(message.room, message.id))  # as if its TTL ran out
    second, fresh = await store.decide(message, judge, with_ban=False, instance="a")
    assert fresh and first.approved and second.approved
    assert [state.recent for state in calls] == [(), ()]
    recent = recent_key(message.room, author_key(message.author_identity))
    assert await redis.zcard(recent) == 1


async def test_a_message_of_the_same_visitor_recorded_meanwhile_means_judging_again(
    redis: Redis,
) -> None:
    """Copy A is being judged when copy B (another replica) is recorded: A's record is refused,
    and A judged again on the new state is the repeat."""
    store = StateStore(redis, SETTINGS)
    other_replica = StateStore(redis, SETTINGS)
    pipeline = Pipeline([Duplicate(30.0)])
    author, room, at = new_author(), _room(), now_ms()
    copy_a = chat(room, "same line", author=author, created_at=at)
    copy_b = chat(room, "same line", author=author, created_at=at + 5)
    calls_a: list[LoadedState] = []
    judge_a = _judge_with(pipeline, copy_a, calls_a)

    async def judge_a_while_b_is_recorded(state: LoadedState) -> tuple[Decision, StrikeOutcome]:
        if not calls_a:
            b, _ = await other_replica.decide(
                copy_b, _judge_with(pipeline, copy_b, []), with_ban=False, instance="b"
            )
            assert b.approved
        return await judge_a(state)

    a, fresh = await store.decide(copy_a, judge_a_while_b_is_recorded, with_ban=False, instance="a")
    assert fresh and len(calls_a) == 2
    assert calls_a[0].recent == () and [m.message_id for m in calls_a[1].recent] == [copy_b.id]
    assert (a.verdict, a.checks) == ("rejected", ["duplicate"])


async def test_a_record_from_before_the_published_flag_counts_as_published(
    redis: Redis,
) -> None:
    """Records written by the previous version (after publishing, without the flag)."""
    message = chat(_room(), "from the old days")
    old = {
        "verdict": "approved",
        "checks": [],
        "reason": "",
        "decidedAt": message.created_at,
        "instance": "old",
    }
    await redis.set(decided_key(message.room, message.id), json.dumps(old), ex=60)
    state = await StateStore(redis, SETTINGS).load(message, with_ban=False)
    assert state.decided == Recorded("approved", [], "", message.created_at, "old", True)


def test_flood_and_duplicate_count_messages_on_either_side_of_created_at() -> None:
    """A message created a moment later but judged first (by the other replica) counts."""
    at = now_ms()
    message = chat("room", "hello again", created_at=at)
    fingerprint = normalize(message.body).fingerprint
    later = RecentMessage("later", at + 3, fingerprint)
    far = RecentMessage("far", at + 60_000, fingerprint)
    flood, duplicate = Flood(1, 10.0), Duplicate(30.0)
    for recent, rejected in (((later,), True), ((far,), False), ((), False)):
        context = Context(normalize(message.body), recent=recent)
        assert (flood.check(message, context) is not None) is rejected
        assert (duplicate.check(message, context) is not None) is rejected
