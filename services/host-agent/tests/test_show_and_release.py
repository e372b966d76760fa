"""Ending the show, releasing a held pause, and `fallback` events, with the production backends
against their doubles (OpenAI Realtime, Anam) in real rooms heard by rtc viewers.

One worker (`openai-realtime` + `anam`, `HOST_PAUSE_RELEASE_S=1`) serves the module; each test
takes a fresh room. The show is ended as the edge ends it: the record in Redis, then a
`ShowEvent` on `room.show.<room>`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus
from livestage.identity import ANAM_AVATAR_IDENTITY
from livestage.schemas import ShowEvent, new_id, now_ms
from livestage.shows import ShowStore, spend_cap_key
from tests.doubles.anam import AnamDouble
from tests.doubles.base import Fault
from tests.doubles.openai_realtime import OpenAIRealtimeDouble

from .conftest import (
    HostWorker,
    command,
    go_live,
    paid_worker,
    unique_room,
    until,
)

DAILY_CAP_USD = 7.5


@dataclass
class Setup:
    realtime: OpenAIRealtimeDouble
    anam: AnamDouble
    worker: HostWorker
    redis: Redis


@pytest.fixture(scope="module")
async def setup(livekit_server, nats_server, redis_server) -> AsyncIterator[Setup]:  # type: ignore[no-untyped-def]
    async with paid_worker(
        livekit_server,
        nats_server,
        redis_server.url,
        cost={"daily_cap_usd": DAILY_CAP_USD},
        pause_release_s=1.0,
    ) as (worker, realtime, anam):
        redis = Redis.from_url(redis_server.url)
        yield Setup(realtime, anam, worker, redis)
        await redis.aclose()


async def end_show(redis: Redis, bus: Bus, room: str) -> None:
    """What `POST /api/operator/show/end` does on the bus side."""
    await ShowStore(redis).end(room)
    event = ShowEvent(id=new_id(), room=room, state="ended", created_at=now_ms())
    await bus.publish(subjects.room_show(room), event)


def ended_reasons(recorder) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.reason for e in recorder.jobs if e.event == "ended"]


async def test_ending_the_show_ends_the_job_and_closes_every_paid_session(
    setup: Setup, bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    realtime, anam = setup.realtime, setup.anam
    room = unique_room()
    recorder, viewer = await go_live(setup.worker, bus, viewers, room)
    live = next(e for e in recorder.jobs if e.event == "live")
    assert (live.voice, live.avatar) == ("openai-realtime", "anam")
    record = await anam.wait_for_avatar("publishing")
    assert record.room == room
    await realtime.wait_until(lambda: realtime.connections >= 1)
    # going live wrote the room's daily cap where the console reads it
    cap = await setup.redis.get(spend_cap_key(room))
    assert cap is not None and float(cap) == DAILY_CAP_USD

    await end_show(setup.redis, bus, room)
    await until(lambda: ended_reasons(recorder), 15, "the job's end")
    assert ended_reasons(recorder) == ["operator"]
    # the Anam session is over (its avatar left the room) and the Realtime socket is closed
    await anam.wait_until(lambda: record.state == "closed", 10)
    await realtime.wait_until(lambda: realtime.connections == 0, 10)

    # a host dispatched while the show is ended (one already on its way) ends at once
    sessions_before = len(anam.sessions)
    await setup.worker.dispatch(room)
    await until(lambda: len(ended_reasons(recorder)) >= 2, 15, "the second job's end")
    assert ended_reasons(recorder) == ["operator", "operator"]
    assert "live" not in [e.event for e in recorder.jobs[-3:]]
    assert len(anam.sessions) == sessions_before  # no paid session was started for it
    assert viewer.room.isconnected()  # the viewer stays; only the host went


async def test_a_held_pause_releases_the_paid_sessions_and_resume_rebuilds_them(
    setup: Setup, bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    realtime, anam = setup.realtime, setup.anam
    room = unique_room()
    recorder, viewer = await go_live(setup.worker, bus, viewers, room)
    first = await anam.wait_for_avatar("publishing")
    await bus.publish(subjects.host_control(room), command(room, "pause"))
    await until(lambda: "released" in recorder.job_events(), 15, "the release")
    await anam.wait_until(lambda: first.state == "closed", 10)  # the Anam session is closed
    await realtime.wait_until(lambda: realtime.connections == 0, 10)
    await until(lambda: viewer.host_state() == "paused", 10, "the host to stay paused")
    assert viewer.room.isconnected() and recorder.ended() is None  # the job goes on

    sessions_before = len(anam.sessions)
    resumed_at = time.time()
    await bus.publish(subjects.host_control(room), command(room, "resume"))
    await until(lambda: "rebuilt" in recorder.job_events(), 20, "the rebuild")
    rebuilt = next(e for e in recorder.jobs if e.event == "rebuilt")
    assert (rebuilt.voice, rebuilt.avatar) == ("openai-realtime", "anam")
    second = await anam.wait_for_avatar("publishing")
    assert len(anam.sessions) == sessions_before + 1 and second is not first
    assert second.room == room
    # the avatar participant is back in the room, and its video reaches the viewer again
    await until(
        lambda: any(
            at > resumed_at and sender == ANAM_AVATAR_IDENTITY for at, sender, _ in viewer.video
        ),
        15,
        "the avatar's video after resume",
    )
    said_at = time.time()
    await bus.publish(subjects.host_control(room), command(room, "say", "Back from the break."))
    await until(lambda: recorder.spoken, 20, "the host to speak again")
    assert recorder.spoken[-1].text == "Back from the break."
    await until(lambda: viewer.audio.loud_since(said_at), 10, "the words heard")
    await viewer.leave()
    await until(lambda: recorder.ended() is not None, 15, "the job's end")


async def test_a_fallback_is_published_with_the_backends_now(setup: Setup, bus, viewers) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    setup.anam.fail(Fault.HTTP_500)
    try:
        recorder, viewer = await go_live(setup.worker, bus, viewers, room)
    finally:
        setup.anam.heal()
    fallback = next(e for e in recorder.jobs if e.event == "fallback")
    assert (fallback.voice, fallback.avatar) == ("openai-realtime", "local")
    assert fallback.reason.startswith("avatar anam: http_5xx")
    await viewer.leave()
    await until(lambda: recorder.ended() is not None, 15, "the job's end")
