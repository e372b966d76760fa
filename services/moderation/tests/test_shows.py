"""A show's own moderation (`moderation.shows`): its blocked words are refused like the block list,
its room cap (per minute) replaces MODERATION_ROOM_RATE for its room; another room keeps the
deployment's rules; a change applies at once through its `room.config` event; Redis away means
the deployment's rules. Real NATS and Redis. (Both caps in one batch: test_batch.py.)"""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import (
    ChatMessage,
    ModerationVerdict,
    ShowConfig,
    ShowConfigEvent,
    ShowModerationConfig,
    new_id,
    now_ms,
)
from livestage.shows import ShowStore
from moderation.checks.blocklist import LANGUAGE_REASON
from moderation.checks.room_rate import BUSY_REASON
from moderation.pipeline import Pipeline
from moderation.shows import NO_RULES, ShowRules
from moderation.state import author_key, strikes_key
from services.moderation.tests.helpers import Harness, new_author
from tests.support.services import free_port
from tests.support.waiting import until


async def test_a_show_refuses_its_words_and_caps_its_room_per_minute(
    start_harness,  # type: ignore[no-untyped-def]
    default_pipeline: Pipeline,
    redis: Redis,
) -> None:
    room = "mod-" + uuid.uuid4().hex[:12]
    store = ShowStore(redis)
    moderation = ShowModerationConfig(blocked_words=["pineapple", "spoiler*"], room_rate=3)
    at = now_ms()
    await store.create(
        ShowConfig(room=room, title="Quiz", moderation=moderation, created_at=at, updated_at=at)
    )
    try:
        show: Harness = await start_harness(default_pipeline, room=room)
        plain: Harness = await start_harness(default_pipeline)  # no show record: our rules

        rude = new_author()
        for body in ["Pineapple on pizza!", "no SPOILERS please"]:
            verdict = await show.judge(body, author=rude)
            assert isinstance(verdict, ModerationVerdict)
            assert (verdict.reason, verdict.checks) == (LANGUAGE_REASON, ["show_words"])
        assert await redis.zcard(strikes_key(room, author_key(rude))) == 2  # like the block list
        assert isinstance(await plain.judge("Pineapple on pizza!"), ChatMessage)

        # three approved messages in one minute of createdAt, whoever sends them; the fourth
        # is told the room is busy (more than MODERATION_ROOM_RATE's per second would allow:
        # the show's cap replaces it)
        minute = (now_ms() // 60_000) * 60_000
        verdicts = [
            await show.judge(f"hello {n}", author=new_author(), created_at=minute + 10 * n)
            for n in range(4)
        ]
        assert [isinstance(v, ChatMessage) for v in verdicts] == [True, True, True, False]
        busy = verdicts[3]
        assert isinstance(busy, ModerationVerdict)
        assert (busy.checks, busy.reason) == (["room_rate"], BUSY_REASON)
        # the next minute has room again
        next_minute = await show.judge("hello again", created_at=minute + 60_000)
        assert isinstance(next_minute, ChatMessage)
    finally:
        await store.delete(room)


async def test_a_show_change_applies_at_once_through_its_config_event(
    start_harness,  # type: ignore[no-untyped-def]
    default_pipeline: Pipeline,
    redis: Redis,
    bus: Bus,
) -> None:
    room = "mod-" + uuid.uuid4().hex[:12]
    store = ShowStore(redis)
    at = now_ms()
    made = await store.create(
        ShowConfig(
            room=room,
            title="Quiz",
            moderation=ShowModerationConfig(blocked_words=["pineapple"]),
            created_at=at,
            updated_at=at,
        )
    )
    try:
        show: Harness = await start_harness(default_pipeline, room=room)
        cache = show.moderator.shows.cache
        cache.ttl_s = 3600.0  # only the event can bring the change in this test's time
        refused = await show.judge("pineapple pizza", author=new_author())
        assert isinstance(refused, ModerationVerdict) and refused.checks == ["show_words"]
        assert isinstance(await show.judge("mango pizza", author=new_author()), ChatMessage)

        changed = await store.replace(
            made.model_copy(update={"moderation": ShowModerationConfig(blocked_words=["mango"])})
        )
        event = ShowConfigEvent(id=new_id(), room=room, config=changed, created_at=now_ms())
        await bus.publish(subjects.room_config(room), event)
        await until(lambda: cache.peek(room) == changed, what="the show's change followed")
        refused = await show.judge("mango pizza", author=new_author())
        assert isinstance(refused, ModerationVerdict) and refused.checks == ["show_words"]
        assert isinstance(await show.judge("pineapple pizza", author=new_author()), ChatMessage)
    finally:
        await store.delete(room)


async def test_redis_away_means_the_deployments_rules_logged_once(caplog) -> None:  # type: ignore[no-untyped-def]
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    rules = ShowRules(redis, ttl_s=0)
    try:
        with caplog.at_level(logging.WARNING, logger="moderation.shows"):
            assert await rules.rules("quiz") is NO_RULES
            assert await rules.rules("quiz") is NO_RULES
    finally:
        await redis.aclose()
    assert caplog.text.count("show rules unknown") == 1
