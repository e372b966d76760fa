"""The show store: configurations by room, the default show, create/replace/delete."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from livestage.kv import connect_redis
from livestage.schemas import ShowConfig, ShowConfigEvent, ShowStageConfig, new_id, now_ms
from livestage.settings import RedisSettings
from livestage.shows import (
    DEFAULT_CREATED_AT,
    SHOWS_KEY,
    DefaultShowKept,
    ShowCache,
    ShowExists,
    ShowStore,
    UnknownShow,
    show_key,
)


def config(room: str, **fields: object) -> ShowConfig:
    return ShowConfig(
        room=room, title="Quiz night", created_at=now_ms(), updated_at=now_ms(), **fields
    )  # type: ignore[arg-type]


async def test_shows_are_created_changed_listed_and_deleted(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis = connect_redis(RedisSettings(url=redis_server.url))
    default, room = "main-" + uuid.uuid4().hex[:8], "quiz-" + uuid.uuid4().hex[:8]
    store = ShowStore(redis, default_room=default)
    try:
        # the default show exists without a record; any other room does not
        assert (await store.config(default)).room == default  # type: ignore[union-attr]
        assert await store.config(room) is None and not await store.exists(room)

        made = await store.create(
            config(room, persona="sage", stage=ShowStageConfig(topics=["Mars"]))
        )
        with pytest.raises(ShowExists):
            await store.create(config(room))
        assert await store.config(room) == made
        assert (await store.rooms())[0] == default and room in await store.rooms()

        changed = await store.replace(made.model_copy(update={"title": "Quiz night 2"}))
        assert (await store.config(room)).title == "Quiz night 2" == changed.title  # type: ignore[union-attr]
        await store.end(room)  # state lives beside the configuration
        assert (await store.get(room)).ended and await store.config(room) == changed

        await store.delete(room)
        assert await store.config(room) is None and room not in await store.rooms()
        assert not await redis.exists(show_key(room))
        with pytest.raises(UnknownShow):
            await store.delete(room)
        with pytest.raises(UnknownShow):
            await store.replace(changed)
        with pytest.raises(DefaultShowKept):
            await store.delete(default)
    finally:
        await redis.aclose()


async def test_the_default_show_keeps_the_timestamps_of_its_first_read(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis = connect_redis(RedisSettings(url=redis_server.url))
    default = "main-" + uuid.uuid4().hex[:8]
    try:
        before = now_ms()
        first = await ShowStore(redis, default_room=default).config(default)
        assert first is not None and before <= first.created_at == first.updated_at <= now_ms()
        # a later read, by another store (another replica, a restart), says the same
        later = await ShowStore(redis, default_room=default).config(default)
        assert later == first
        stamped = await redis.hget(show_key(default), DEFAULT_CREATED_AT)
        assert stamped is not None and int(stamped) == first.created_at
        # once the default show is stored, its own record counts
        stored = config(default)
        await ShowStore(redis, default_room=default).replace(stored)
        assert await ShowStore(redis, default_room=default).config(default) == stored
    finally:
        await redis.delete(show_key(default))
        await redis.srem(SHOWS_KEY, default)
        await redis.aclose()


async def test_the_cache_keeps_a_show_for_its_time_and_a_missing_one_never(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis = connect_redis(RedisSettings(url=redis_server.url))
    default, room = "main-" + uuid.uuid4().hex[:8], "quiz-" + uuid.uuid4().hex[:8]
    others = ["other-" + uuid.uuid4().hex[:8] for _ in range(3)]
    store = ShowStore(redis, default_room=default)
    now = [1000.0]
    cache = ShowCache(5.0, size=2, clock=lambda: now[0])  # the edge's: the store per call
    try:
        assert not await cache.exists(room, store)  # not yet a show: asked, not remembered
        made = await store.create(config(room))
        assert await cache.exists(room, store)  # a new show works at once
        await store.delete(room)  # by another worker or replica
        now[0] += 4.9
        assert await cache.exists(room, store)  # believed for up to ttl_s...
        now[0] += 0.2
        assert not await cache.exists(room, store)  # ...and refused after it
        await store.create(made)
        assert await cache.exists(room, store)
        await store.delete(room)
        cache.forget(room)  # the worker that deleted it refuses its tokens at once
        assert not await cache.exists(room, store)
        for other in others:
            await store.create(config(other))
            assert await cache.exists(other, store)
        assert cache.kept() == others[1:]  # bounded: the oldest went first
        assert await ShowCache(0).exists(default, store)  # the default show: no Redis call
        assert not await ShowCache(0).exists(room, store)
        with pytest.raises(TypeError, match="no ShowStore"):
            await ShowCache(5.0).config(room)
    finally:
        for other in others:
            await store.delete(other)
        await redis.aclose()


async def test_the_cache_follows_config_events_and_may_keep_a_missing_show(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis = connect_redis(RedisSettings(url=redis_server.url))
    room = "quiz-" + uuid.uuid4().hex[:8]
    store = ShowStore(redis)
    now = [1000.0]
    cache = ShowCache(3.0, store, keep_missing=True, clock=lambda: now[0])  # moderation's

    def event(config: ShowConfig | None) -> ShowConfigEvent:
        return ShowConfigEvent(id=new_id(), room=room, config=config, created_at=now_ms())

    try:
        assert await cache.config(room) is None
        made = await store.create(config(room))
        assert await cache.config(room) is None  # "no such show" is kept for the TTL...
        now[0] += 3.0
        assert await cache.config(room) == made  # ...then asked again
        changed = await store.replace(made.model_copy(update={"title": "Quiz night 2"}))
        assert (await cache.config(room)) == made  # a change unseen waits for the TTL...
        cache.follow(event(changed))
        assert await cache.config(room) == changed  # ...a change followed applies at once
        await store.delete(room)
        cache.follow(event(None))
        assert await cache.config(room) is None
    finally:
        await redis.delete(show_key(room))
        await redis.aclose()


def test_a_show_config_refuses_bad_input() -> None:
    for bad in (
        {"room": "no spaces"},
        {"voice": "telepathy"},
        {"title": "x" * 121},
        {"persona": "../etc"},
        {"daily_cap_usd": -1},
    ):
        fields = {"room": "quiz", "title": "Quiz", "created_at": now_ms(), "updated_at": now_ms()}
        with pytest.raises(ValidationError):
            ShowConfig(**{**fields, **bad})  # type: ignore[arg-type]
