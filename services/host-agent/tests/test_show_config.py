"""A host job follows its show's configuration (`host_agent.show`): the persona, the backends
and the daily cap come from the room's `ShowConfig` in Redis; a persona changed while live
(`room.config.<room>`) applies at once. No record, or Redis away: the deployment's settings.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from host_agent.config import JobConfig
from host_agent.settings import CostSettings, HostSettings
from host_agent.show import for_show, persona_file, read_show
from livestage import attributes, subjects
from livestage.bus import Bus
from livestage.schemas import ShowConfig, ShowConfigEvent, new_id, now_ms
from livestage.settings import RedisSettings
from livestage.shows import ShowStore, spend_cap_key
from tests.support.services import free_port

from .conftest import HostWorker, go_live, running_worker, unique_room, until

SAGE_GREETING = "Good evening, and welcome. I'm Sage. Settle in; the chat is open."


def show(room: str, **fields: object) -> ShowConfig:
    return ShowConfig(
        room=room, title="Late show", created_at=now_ms(), updated_at=now_ms(), **fields
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def show_worker(livekit_server, nats_server, redis_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    services = {
        "redis": RedisSettings(url=redis_server.url),
        "cost": CostSettings(daily_cap_usd=20.0),
    }
    async with running_worker(livekit_server, nats_server, services=services, greet=True) as w:
        yield w


async def test_a_show_with_persona_sage_greets_as_sage_and_caps_its_own_spend(
    show_worker: HostWorker, redis_server, bus: Bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    redis = Redis.from_url(redis_server.url)
    store = ShowStore(redis)
    try:
        made = await store.create(show(room, persona="sage", daily_cap_usd=3.25))
        recorder, viewer = await go_live(show_worker, bus, viewers, room)
        await until(lambda: recorder.spoken, 20, "the greeting")
        greeting = recorder.spoken[0]
        assert (greeting.speaker_name, greeting.text) == ("Sage", SAGE_GREETING)
        # the show's cap, not HOST_COST_DAILY_CAP_USD (20), is where the console reads it
        cap = await redis.get(spend_cap_key(room))
        assert cap is not None and float(cap) == 3.25

        # the operator changes the show's persona while it is live: it applies at once
        changed = made.model_copy(update={"persona": "nova", "updated_at": now_ms() + 1})
        await store.replace(changed)
        event = ShowConfigEvent(id=new_id(), room=room, config=changed, created_at=now_ms())
        await bus.publish(subjects.room_config(room), event)
        await until(
            lambda: (
                (h := viewer.host()) is not None
                and h.attributes.get(attributes.HOST_PERSONA) == "Nova"
            ),
            10,
            "the persona attribute",
        )
    finally:
        await store.delete(room)
        await redis.aclose()


async def test_a_room_without_a_show_record_uses_the_deployments_settings(
    show_worker: HostWorker, redis_server, bus: Bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    recorder, _viewer = await go_live(show_worker, bus, viewers, room)
    await until(lambda: recorder.spoken, 20, "the greeting")
    assert recorder.spoken[0].speaker_name == "Nova"  # HOST_PERSONA_FILE
    redis = Redis.from_url(redis_server.url)
    try:
        assert float(await redis.get(spend_cap_key(room))) == 20.0  # type: ignore[arg-type]
    finally:
        await redis.aclose()


def test_a_show_overrides_backends_and_cap_for_its_jobs_only() -> None:
    worker = JobConfig(
        host=HostSettings(voice="local", avatar="none"), cost=CostSettings(daily_cap_usd=20.0)
    )
    job = for_show(worker, show("quiz", voice="openai-realtime", avatar="anam", daily_cap_usd=0))
    assert (job.host.voice, job.host.avatar, job.cost.daily_cap_usd) == (
        "openai-realtime",
        "anam",
        0.0,
    )
    assert (worker.host.voice, worker.host.avatar, worker.cost.daily_cap_usd) == (
        "local",
        "none",
        20.0,
    )  # the worker's own config is untouched
    # null fields keep the deployment's settings; no show at all is the worker's config
    plain = for_show(worker, show("quiz"))
    assert (plain.host.voice, plain.host.avatar, plain.cost.daily_cap_usd) == (
        "local",
        "none",
        20.0,
    )
    assert for_show(worker, None) is worker


def test_an_unknown_persona_is_the_default_persona_with_a_warning(caplog) -> None:  # type: ignore[no-untyped-def]
    worker = JobConfig()
    assert persona_file(for_show(worker, show("quiz", persona="sage")), "quiz").stem == "sage"
    with caplog.at_level(logging.WARNING, logger="host_agent.show"):
        path = persona_file(for_show(worker, show("quiz", persona="nobody")), "quiz")
    assert path == worker.host.persona_file
    assert "no persona 'nobody'" in caplog.text


async def test_redis_away_means_the_deployments_settings(caplog) -> None:  # type: ignore[no-untyped-def]
    config = JobConfig(redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"))
    with caplog.at_level(logging.WARNING, logger="host_agent.show"):
        assert await read_show(config, "quiz") is None
    assert "show configuration unknown" in caplog.text
