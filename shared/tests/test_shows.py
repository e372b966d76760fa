"""The show store: configurations by room, the default show, create/replace/delete."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from livestage.kv import connect_redis
from livestage.schemas import ShowConfig, ShowStageConfig, now_ms
from livestage.settings import RedisSettings
from livestage.shows import DefaultShowKept, ShowExists, ShowStore, UnknownShow, show_key


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
