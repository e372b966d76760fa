"""The service: idle and healthy with nothing configured (as a process), and its platform
clients supervised in-process: one that fails is started again, the other keeps going; a
platform that cannot reply as configured is said once at start and gets no replies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request

import pytest
from redis.asyncio import Redis

from chat_bridge import replies
from chat_bridge.app import configured_platforms, restart_delay_s, serve, show_room
from chat_bridge.convert import chat_id
from chat_bridge.settings import BridgeSettings
from chat_bridge.source import PlatformChat, Sink
from livestage import metrics, subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, SpokenTurn, new_id, now_ms
from tests.support.services import end_service, free_port, start_service_until

from .conftest import Metrics, ScriptedPlatform, arrivals, item, unique_room


async def test_with_nothing_configured_the_service_idles_and_is_ready(  # type: ignore[no-untyped-def]
    nats_server, redis_server
) -> None:
    port = free_port()
    env = {
        "NATS_URL": nats_server.url,
        "REDIS_URL": redis_server.url,
        "LIVESTAGE_HEALTH_PORT": str(port),
        "BRIDGE_YOUTUBE_VIDEO_ID": "",
        "BRIDGE_TWITCH_CHANNEL": "",
    }
    process = await asyncio.to_thread(
        start_service_until, "chat_bridge", env, "no platform configured"
    )
    try:

        def ready() -> tuple[int, dict[str, object]]:
            url = f"http://127.0.0.1:{port}/readyz"
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())

        status = 0
        async with asyncio.timeout(30):  # the first Redis PING runs right after the NATS connect
            while status != 200:
                with contextlib.suppress(OSError):
                    status, _ = await asyncio.to_thread(ready)
                if status != 200:
                    await asyncio.sleep(0.2)  # noqa: ASYNC110 - polling an HTTP endpoint
        assert process.poll() is None
    finally:
        output = await asyncio.to_thread(end_service, process)
    assert process.returncode == 0, output
    assert output.count("no platform configured") == 1, output


def test_no_factory_no_platform_and_the_room_defaults_to_livekits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert configured_platforms(Redis()) == []
    chat = ScriptedPlatform("twitch")
    assert configured_platforms(Redis(), [lambda _redis: None, lambda _redis: chat]) == [chat]
    monkeypatch.setenv("LIVEKIT_ROOM", "the-show")
    assert show_room(BridgeSettings()) == "the-show"
    assert show_room(BridgeSettings(room="other-show")) == "other-show"


def test_the_restart_delay_doubles_up_to_the_cap_with_jitter() -> None:
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)]:
        delays = {restart_delay_s(failures, 1.0, 30.0) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


async def test_a_failing_platform_is_restarted_and_the_other_keeps_going(
    bridge_bus: Bus, redis: Redis
) -> None:
    room, measured = unique_room(), Metrics()
    seen = await arrivals(bridge_bus, subjects.chat_submitted(room), ChatMessage)
    flaky_message = item("twitch", "made it after a restart")

    async def steady(sink: Sink, stop: asyncio.Event, run: int) -> None:
        await sink.submit(item("youtube", "steady 0"))
        sink.connected("youtube", True)

    async def flaky(sink: Sink, stop: asyncio.Event, run: int) -> None:
        if run < 3:
            raise ConnectionResetError(f"run {run}: the platform hung up")
        await sink.submit(flaky_message)

    youtube, twitch = ScriptedPlatform("youtube", steady), ScriptedPlatform("twitch", flaky)
    platforms: list[PlatformChat] = [youtube, twitch]
    stop = asyncio.Event()
    settings = BridgeSettings(restart_min_s=0.05, restart_max_s=0.2)
    task = asyncio.create_task(
        serve(bridge_bus, redis, room, platforms, stop, settings, meter=measured.meter)
    )
    try:
        await seen.changed.until(
            lambda: {m.body for m in seen.models} >= {"steady 0", "made it after a restart"},
            within=15,
            what="both platforms' messages",
        )
        assert twitch.runs == 3 and youtube.runs == 1  # the steady one was never restarted
        problems = metrics.BRIDGE_PROBLEMS.name
        assert measured.count(problems, platform="twitch", outcome="crashed") == 2
        assert measured.count(problems, platform="youtube") == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert youtube.closed and twitch.closed


async def _acked(bus: Bus, durable: str) -> bool:
    info = await bus.js.consumer_info(subjects.HOST.name, durable)
    return info.delivered.stream_seq > 0 and info.num_ack_pending == 0


async def test_a_platform_that_cannot_reply_is_said_once_and_only_the_other_replies(  # type: ignore[no-untyped-def]
    bridge_bus: Bus, redis: Redis, redis_server, caplog
) -> None:
    room = unique_room()
    marta, yuki = (
        item("twitch", "hi host!", user_name="Marta"),
        item("youtube", "hello", user_name="Yuki"),
    )

    async def says(message):  # type: ignore[no-untyped-def]
        async def script(sink: Sink, stop: asyncio.Event, run: int) -> None:
            await sink.submit(message)

        return script

    twitch, youtube = (
        ScriptedPlatform("twitch", await says(marta)),
        ScriptedPlatform("youtube", await says(yuki)),
    )
    youtube.off_reason = "replies need BRIDGE_YOUTUBE_REFRESH_TOKEN"
    seen = await arrivals(bridge_bus, subjects.chat_submitted(room), ChatMessage)
    stop = asyncio.Event()
    settings = BridgeSettings(replies=True, reply_max_wait_s=0.0)
    caplog.set_level("WARNING", logger="chat_bridge.app")
    task = asyncio.create_task(
        serve(
            bridge_bus,
            redis,
            room,
            [twitch, youtube],
            stop,
            settings,
            redis_url=redis_server.url,
            meter=Metrics().meter,
        )
    )
    try:
        await seen.changed.until(lambda: len(seen.models) == 2, within=15, what="both lines")
        answered = [chat_id(m.platform, m.message_id) for m in (yuki, marta)]
        spoken = SpokenTurn(
            id=new_id(),
            room=room,
            text="Hello Marta and Yuki!",
            reply_to=answered,
            started_at=now_ms(),
            ended_at=now_ms(),
        )
        await bridge_bus.publish(subjects.host_spoken(room), spoken)
        await twitch.changed.until(lambda: bool(twitch.replies), within=15, what="the Twitch reply")
        # the turn is acked only once every platform's reply to it is done: then look
        durable = replies.DURABLE_PREFIX + room
        async with asyncio.timeout(15):  # JetStream tells no one when an ack lands: ask
            while not await _acked(bridge_bus, durable):  # noqa: ASYNC110 - no ack event
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert youtube.replies == []
    said = [
        r.getMessage() for r in caplog.records if "replies on YouTube are off" in r.getMessage()
    ]
    assert said == ["replies on YouTube are off: replies need BRIDGE_YOUTUBE_REFRESH_TOKEN"]
