"""A chat POST's bans and limits in one round trip, and POSTs in flight together sharing one
(`chat_admission.py`), against a real Redis."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from livestage.bans import ban_keys
from token_service.chat_admission import BAN_ENTRY, BatchedScript, ChatAdmission
from token_service.ratelimit import HIT_IN_ORDER, Limit, RateLimiter


async def test_a_lone_call_goes_at_once_and_calls_in_flight_together_share_a_round_trip(
    redis_server,  # type: ignore[no-untyped-def]
) -> None:
    redis = Redis.from_url(redis_server.url)
    try:
        prefix = f"test-batch-{uuid.uuid4().hex[:8]}"
        script = BatchedScript(redis, HIT_IN_ORDER)
        limits = ["3", "60"]
        assert await script([f"{prefix}:lone"], ["1000", *limits]) == 0
        assert script.round_trips == 1
        answers = await asyncio.gather(
            *(script([f"{prefix}:{n % 5}"], ["1000", *limits]) for n in range(20))
        )
        # buckets of 3: each of the 5 took its first 3 hits, refused the 4th
        assert sorted(answers) == [0] * 15 + [1] * 5
        # the first went alone, the other 19 waited for it and went in one pipeline
        assert script.round_trips <= 3, script.round_trips
    finally:
        await redis.aclose()


async def test_a_ban_entry_counts_nothing_and_notes_the_network(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis = Redis.from_url(redis_server.url)
    try:
        room = f"adm-{uuid.uuid4().hex[:8]}"
        limiter = RateLimiter.in_redis(redis_server.url, redis, room)
        admission = ChatAdmission(redis, limiter, seen_ttl_s=60)
        checks = [(Limit.parse("chat-visitor", "2/minute"), "tagA")]
        assert await admission.hit(room, "tagA", "10.0.0.1", checks) == 0
        assert await admission.hit(room, "tagA", "10.0.0.1", checks) == 0
        assert await admission.hit(room, "tagA", "10.0.0.1", checks) == 1  # full
        bans, _, seen = ban_keys(room, "tagB")
        await redis.hset(bans, "tagB", "{}")
        other = [(Limit.parse("chat-visitor", "1/minute"), "tagB")]
        assert await admission.hit(room, "tagB", "10.0.0.2", other) == BAN_ENTRY
        assert await redis.get(seen) == b"10.0.0.2"
        await redis.hdel(bans, "tagB")
        # the ban entry used up nothing: tagB's one hit is still there
        assert await admission.hit(room, "tagB", "10.0.0.2", other) == 0
    finally:
        await redis.aclose()
