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

from livestage.bans import Ban
from livestage.bus import Bus
from livestage.identity import ban_key_of
from livestage.safety.normalize import normalize
from livestage.schemas import ChatMessage, ModerationVerdict, now_ms
from moderation.checks import Context, RecentMessage, Verdict
from moderation.checks.duplicate import Duplicate
from moderation.checks.flood import Flood
from moderation.checks.room_rate import BUSY_REASON, RoomCap
from moderation.pipeline import Decision, Pipeline, StrikeOutcome, strike_outcome
from moderation.settings import ModerationSettings
from moderation.state import (
    BatchJudgement,
    LoadedState,
    Recorded,
    RoomClaim,
    StateStore,
    author_key,
    decided_key,
    recent_key,
    room_places_key,
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


async def test_the_state_read_brings_the_active_ban_and_lifts_an_expired_one(
    redis: Redis,
) -> None:
    """The ban is read in the same round trip as the state; an expired one is lifted, not
    returned."""
    store = StateStore(redis, SETTINGS)
    room = _room()
    banned, expired = chat(room, "let me in", author=new_author()), chat(room, "me too")
    now = now_ms()
    for message, expires_at in ((banned, 0), (expired, now - 1)):
        tag = ban_key_of(message.author_identity)
        assert tag is not None
        await store.bans.ban(room, Ban(tag, reason="test", created_at=now, expires_at=expires_at))
    states = await store.load_many([banned, expired], with_ban=True)
    assert states[0].ban is not None and states[0].ban.reason == "test"
    assert states[1].ban is None
    assert [b.visitor_tag for b in await store.bans.list(room)] == [
        ban_key_of(banned.author_identity)
    ]
    assert (await store.load(banned, with_ban=False)).ban is None  # not asked: not read


async def test_a_place_past_the_cap_records_the_busy_verdict_once(redis: Redis) -> None:
    """Places are taken as the verdicts are recorded, in batch order: past the cap the busy
    verdict is what is recorded (and returned); a redelivery gets it back and takes no place."""
    store = StateStore(redis, SETTINGS)
    room, at = _room(), now_ms()
    first, second = chat(room, "one", created_at=at), chat(room, "two", created_at=at)
    cap = RoomCap(1)
    busy = Verdict("room_rate", BUSY_REASON)
    calls: list[list[LoadedState]] = []

    async def judge(states: list[LoadedState]) -> list[BatchJudgement | None]:
        calls.append(states)
        judged: list[BatchJudgement | None] = []
        for message, state in zip((first, second), states, strict=True):
            if state.decided is not None:
                judged.append(None)
                continue
            approved = Decision((), normalize(message.body).fingerprint)
            claim = RoomClaim(cap, Decision((busy,), approved.fingerprint))
            judged.append((approved, StrikeOutcome(), claim))
        return judged

    decided = await store.decide_batch([first, second], judge, with_ban=False, instance="a")
    assert [(r.verdict, r.checks, fresh) for r, fresh in decided] == [
        ("approved", [], True),
        ("rejected", ["room_rate"], True),
    ]
    again = await store.decide_batch([first, second], judge, with_ban=False, instance="b")
    assert [(r, fresh) for r, fresh in again] == [(r, False) for r, _ in decided]
    places = room_places_key(room, cap, cap.window(at))
    assert await redis.hget(places, "#") == b"2" and len(calls) == 2


async def test_a_batch_judged_on_a_stale_state_takes_no_place(redis: Redis) -> None:
    """When another instance records a message of the same visitor during the judgement, the
    write is refused whole: the message is judged again, and only the recorded judgement takes
    a place in the room."""
    store, other_replica = StateStore(redis, SETTINGS), StateStore(redis, SETTINGS)
    pipeline = Pipeline([Duplicate(30.0)])
    author, room, at = new_author(), _room(), now_ms()
    mine = chat(room, "hello room", author=author, created_at=at)
    theirs = chat(room, "something else", author=author, created_at=at + 1)
    cap = RoomCap(5)
    calls: list[LoadedState] = []

    async def judge(states: list[LoadedState]) -> list[BatchJudgement | None]:
        if not calls:
            await other_replica.decide(
                theirs, _judge_with(pipeline, theirs, []), with_ban=False, instance="b"
            )
        calls.append(states[0])
        decision, outcome = await _judge_with(pipeline, mine, [])(states[0])
        return [(decision, outcome, RoomClaim(cap, decision))]

    ((record, fresh),) = await store.decide_batch([mine], judge, with_ban=False, instance="a")
    assert fresh and record.approved and len(calls) == 2
    assert [m.message_id for m in calls[1].recent] == [theirs.id]
    places = room_places_key(room, cap, cap.window(at))
    assert await redis.hgetall(places) == {b"#": b"1", mine.id.encode(): b"1"}


async def test_published_marks_ride_on_the_next_read_or_are_written_soon(redis: Redis) -> None:
    """`published_soon`: the next read writes the marks before it reads (so it finds them);
    with no read coming they are written on their own."""
    store = StateStore(redis, SETTINGS)
    pipeline = Pipeline([Flood(5, 10.0)])
    carried, alone = chat(_room(), "carried along"), chat(_room(), "on its own")
    records = {}
    for message in (carried, alone):
        records[message.id], _ = await store.decide(
            message, _judge_with(pipeline, message, []), with_ban=False, instance="a"
        )
    store.published_soon([(carried, records[carried.id])])
    state = await store.load(carried, with_ban=False)
    assert state.decided is not None and state.decided.published

    store.published_soon([(alone, records[alone.id])])

    async with asyncio.timeout(10):  # written within MARK_PUBLISHED_WITHIN_S (0.1 s)
        key = decided_key(alone.room, alone.id)
        while not Recorded.from_json(await redis.get(key)).published:  # noqa: ASYNC110 - Redis
            await asyncio.sleep(0.02)
    ttl = await redis.ttl(decided_key(alone.room, alone.id))
    assert 0 < ttl <= SETTINGS.decided_ttl_s  # the mark kept the record's expiry
