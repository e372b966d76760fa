"""Platform chat per show (`chat_bridge.shows`): each show's YouTube video or Twitch channel
feeds its own room, started, moved and stopped as the shows change (`room.config.<room>`), with
the YouTube and Twitch doubles, real NATS and Redis and the bridge's own `serve` per room."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from chat_bridge import shows
from chat_bridge.app import serve
from chat_bridge.settings import BridgeSettings, TwitchSettings, YouTubeSettings
from chat_bridge.shows import ShowBridges, ShowSources, show_sources
from chat_bridge.source import PlatformChat
from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import (
    ChatMessage,
    ShowConfig,
    ShowConfigEvent,
    ShowPlatformChat,
    new_id,
    now_ms,
)
from livestage.shows import DefaultShowKept, ShowStore, UnknownShow
from tests.doubles.twitch import Chatter, TwitchDouble
from tests.doubles.youtube import YouTubeDouble
from tests.support.services import free_port
from tests.support.waiting import until

from .conftest import Arrivals, arrivals, unique_room
from .test_twitch import settings_for as twitch_settings_for
from .test_youtube import settings_for as youtube_settings_for


@pytest.fixture(autouse=True)
async def shows_deleted_after(redis: Redis) -> AsyncIterator[None]:
    """The shows a test stores are deleted after it: every later bridge on the session's Redis
    (tests/e2e/test_platform_chat.py, test_every_metric.py) follows every show it finds there."""
    store = ShowStore(redis)
    before = set(await store.rooms())
    yield
    for room in set(await store.rooms()) - before:
        with contextlib.suppress(UnknownShow, DefaultShowKept):
            await store.delete(room)


def a_show(room: str, video: str | None = None, twitch_id: str | None = None) -> ShowConfig:
    chat = ShowPlatformChat(youtube_video_id=video, twitch_channel_id=twitch_id)
    return ShowConfig(
        room=room, title=room, platform_chat=chat, created_at=now_ms(), updated_at=now_ms()
    )


def a_video() -> str:
    return "v" + uuid.uuid4().hex[:10]


def test_a_null_is_the_deployments_setting_on_its_show_only() -> None:
    youtube = YouTubeSettings(video_id="deployvideo1")
    twitch = TwitchSettings(channel="deploychannel")
    settings = {"youtube_settings": youtube, "twitch_settings": twitch}
    bare = a_show("quiz")
    assert show_sources(bare, deployment=True, **settings) == ShowSources(
        youtube_video_id="deployvideo1", twitch_channel="deploychannel"
    )
    assert show_sources(None, deployment=True, **settings) == ShowSources(
        youtube_video_id="deployvideo1", twitch_channel="deploychannel"
    )
    assert not show_sources(bare, deployment=False, **settings)
    assert not show_sources(None, deployment=False, **settings)
    own = a_show("quiz", video="showvideo01", twitch_id="12345")
    expected = ShowSources(youtube_video_id="showvideo01", twitch_channel_id="12345")
    assert show_sources(own, deployment=True, **settings) == expected
    assert show_sources(own, deployment=False, **settings) == expected
    # the deployment's channel (a broadcast lookup) gives way to the show's own video
    by_channel = YouTubeSettings(channel_id="UCdeploy")
    assert show_sources(
        a_show("q", video="showvideo01"),
        deployment=True,
        youtube_settings=by_channel,
        twitch_settings=twitch,
    ) == ShowSources(youtube_video_id="showvideo01", twitch_channel="deploychannel")


@contextlib.asynccontextmanager
async def bridging(
    bus: Bus,
    redis: Redis,
    youtube: YouTubeSettings,
    twitch: TwitchSettings | None = None,
) -> AsyncIterator[ShowBridges]:
    """The bridges of every show, as `app.main` runs them (the deployment's show is a room no
    test uses, with no platform of its own)."""
    settings = BridgeSettings(restart_min_s=0.05, restart_max_s=0.2)

    async def serve_room(room: str, platforms: Sequence[PlatformChat], stop: asyncio.Event) -> None:
        await serve(bus, redis, room, platforms, stop, settings)

    bridges = ShowBridges(
        bus,
        ShowStore(redis),
        unique_room(),
        serve_room,
        youtube_settings=youtube,
        twitch_settings=twitch or TwitchSettings(),
    )
    stop = asyncio.Event()
    await bridges.start()
    task = asyncio.create_task(bridges.run(stop))
    try:
        yield bridges
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert not bridges.running


async def changed(bus: Bus, store: ShowStore, config: ShowConfig | None, room: str) -> None:
    """What the operator routes do: store the change, then announce it."""
    if config is None:
        await store.delete(room)
    else:
        await store.replace(config)
    event = ShowConfigEvent(id=new_id(), room=room, config=config, created_at=now_ms())
    await bus.publish(subjects.room_config(room), event)


async def lands(seen: Arrivals[ChatMessage], text: str) -> None:
    await seen.changed.until(
        lambda: any(m.body == text for m in seen.models), 15, f"{text!r} in its room"
    )


async def test_each_shows_video_feeds_its_own_room_and_follows_changes_and_deletion(
    bridge_bus: Bus, redis: Redis
) -> None:
    key = f"key-{uuid.uuid4().hex}"
    quiz, news = unique_room(), unique_room()
    quiz_video, news_video, moved_video = a_video(), a_video(), a_video()
    store = ShowStore(redis)
    await store.create(a_show(quiz, video=quiz_video))
    await store.create(a_show(news, video=news_video))
    quiz_seen = await arrivals(bridge_bus, subjects.chat_submitted(quiz), ChatMessage)
    news_seen = await arrivals(bridge_bus, subjects.chat_submitted(news), ChatMessage)
    async with YouTubeDouble(api_key=key, polling_interval_ms=50) as youtube:
        chats = {video: youtube.go_live(video) for video in (quiz_video, news_video, moved_video)}

        def polled(video: str) -> int:
            return sum(r.query.get("liveChatId") == chats[video] for r in youtube.chat_requests)

        async with bridging(
            bridge_bus, redis, youtube_settings_for(youtube, key, video_id="")
        ) as bridges:
            assert bridges.sources(quiz) == ShowSources(youtube_video_id=quiz_video)
            await youtube.wait_until(lambda: polled(quiz_video) and polled(news_video))
            youtube.post(quiz_video, "a quiz question")
            youtube.post(news_video, "news from the wire")
            await lands(quiz_seen, "a quiz question")
            await lands(news_seen, "news from the wire")
            assert [m.body for m in quiz_seen.models] == ["a quiz question"]
            assert [m.body for m in news_seen.models] == ["news from the wire"]
            assert {m.source.platform for m in quiz_seen.models if m.source} == {"youtube"}

            # the quiz moves to another broadcast at run time
            await changed(bridge_bus, store, a_show(quiz, video=moved_video), quiz)
            await youtube.wait_until(lambda: polled(moved_video))
            assert bridges.sources(quiz) == ShowSources(youtube_video_id=moved_video)
            old_polls = polled(quiz_video)
            youtube.post(moved_video, "from the new broadcast")
            await lands(quiz_seen, "from the new broadcast")
            assert polled(quiz_video) == old_polls  # the old broadcast is no longer read

            # a change that keeps the sources leaves the running bridge alone
            running = bridges.running[news]
            retitled = a_show(news, video=news_video).model_copy(update={"title": "News at 9"})
            await changed(bridge_bus, store, retitled, news)
            # the deletion of the quiz comes after it on the same watch: once it is applied,
            # the retitle was too
            await changed(bridge_bus, store, None, quiz)
            await until(lambda: quiz not in bridges.running, 15, "the quiz's bridge to stop")
            assert bridges.running[news] is running
            stopped_polls = polled(moved_video)
            youtube.post(news_video, "the news goes on")
            await lands(news_seen, "the news goes on")
            assert polled(moved_video) == stopped_polls  # the deleted show's source stopped
    assert [m.body for m in quiz_seen.models] == ["a quiz question", "from the new broadcast"]


async def test_a_show_created_at_run_time_gets_its_twitch_channel_by_id(
    bridge_bus: Bus, redis: Redis
) -> None:
    room = unique_room()
    seen = await arrivals(bridge_bus, subjects.chat_submitted(room), ChatMessage)
    async with TwitchDouble() as twitch:
        # the deployment follows no channel of its own: the show names it by its user id
        settings = twitch_settings_for(twitch, channel="")
        youtube = YouTubeSettings()
        async with bridging(bridge_bus, redis, youtube, settings) as bridges:
            assert room not in bridges.running
            store = ShowStore(redis)
            config = a_show(room, twitch_id=twitch.broadcaster_id)
            await store.create(config)
            await bridge_bus.publish(
                subjects.room_config(room),
                ShowConfigEvent(id=new_id(), room=room, config=config, created_at=now_ms()),
            )
            await twitch.wait_until(twitch.subscribed_session)
            await twitch.chat(Chatter("777", "Marta"), "hello from twitch")
            await lands(seen, "hello from twitch")
            assert seen.models[0].source is not None and seen.models[0].source.platform == "twitch"
            # no lookup of a login: the show gave the id
            assert not [r for r in twitch.requests if r.path.endswith("/users")]


async def test_without_redis_the_deployments_show_runs_on_its_settings_and_the_shows_follow(
    bridge_bus: Bus, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shows, "SHOWS_RETRY_S", 0.1)
    deployment, quiz = unique_room(), unique_room()
    await ShowStore(redis).create(a_show(quiz, video="quizvideo01"))
    served: set[str] = set()

    async def serve_room(room: str, platforms: Sequence[PlatformChat], stop: asyncio.Event) -> None:
        served.add(room)
        await stop.wait()

    unreachable = Redis(port=free_port(), socket_connect_timeout=1)
    bridges = ShowBridges(
        bridge_bus,
        ShowStore(unreachable),
        deployment,
        serve_room,
        # never polled: `serve_room` here only notes the room
        youtube_settings=YouTubeSettings(
            video_id="deployvideo1", api_key=SecretStr("key"), base_url="http://127.0.0.1:9"
        ),
    )
    stop = asyncio.Event()
    await bridges.start()  # Redis refuses: no crash, the deployment's show on its settings
    assert bridges.sources(deployment) == ShowSources(youtube_video_id="deployvideo1")
    assert quiz not in bridges.running
    task = asyncio.create_task(bridges.run(stop))
    try:
        bridges.store = ShowStore(redis)  # Redis is back: the next read brings every show
        await until(lambda: quiz in served, 15, "the quiz's bridge once the shows are read")
        assert bridges.sources(quiz) == ShowSources(youtube_video_id="quizvideo01")
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await unreachable.aclose()
