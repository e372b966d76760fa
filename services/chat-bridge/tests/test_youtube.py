"""YouTube Live chat (`chat_bridge.youtube`) against the YouTube Data API double, real Redis and a
recording sink: item mapping, paging and polling, resuming after a restart, platform moderation,
each kind of trouble reported and recovered from, the quota budget, replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from chat_bridge.settings import YouTubeSettings
from chat_bridge.source import PlatformMessage, ReplyTarget
from chat_bridge.youtube import (
    YouTubeChat,
    epoch_ms,
    from_settings,
    poll_interval_s,
    quota_day,
    read_item,
    reply_text,
    seconds_to_next_quota_day,
)
from livestage.bus import BusUnavailable
from livestage.kv import connect_redis
from livestage.settings import RedisSettings
from livestage.text import ELLIPSIS
from tests.doubles.base import Fault
from tests.doubles.youtube import MODERATOR, VIEWER, Author, YouTubeDouble
from tests.support.waiting import Changed

VIDEO = "dQw4w9WgXcQ"
CHANNEL = "UCbroadcaster00000000000"


@dataclass
class RecordingSink:
    """A `Sink` that keeps every call; `bus_down` makes the next submits raise BusUnavailable."""

    submitted: list[PlatformMessage] = field(default_factory=list)
    removed_messages: list[tuple[str, str]] = field(default_factory=list)
    removed_users: list[tuple[str, str]] = field(default_factory=list)
    states: list[bool] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    bus_down: int = 0
    changed: Changed = field(default_factory=Changed)

    async def submit(self, message: PlatformMessage) -> None:
        if self.bus_down > 0:
            self.bus_down -= 1
            self.changed.notify()
            raise BusUnavailable("NATS is away (test)")
        self.submitted.append(message)
        self.changed.notify()

    async def remove_message(self, platform: str, message_id: str) -> None:
        self.removed_messages.append((platform, message_id))
        self.changed.notify()

    async def remove_user(self, platform: str, user_id: str) -> None:
        self.removed_users.append((platform, user_id))
        self.changed.notify()

    def connected(self, platform: str, up: bool) -> None:
        assert platform == "youtube"
        self.states.append(up)
        self.changed.notify()

    def problem(self, platform: str, outcome: str, detail: str) -> None:
        assert platform == "youtube"
        self.problems.append((platform, outcome, detail))
        self.changed.notify()

    def outcomes(self, outcome: str) -> list[str]:
        return [detail for _, said, detail in self.problems if said == outcome]

    def ids(self) -> list[str]:
        return [message.message_id for message in self.submitted]

    async def until(self, condition: Callable[[], Any], what: str, within: float = 10.0) -> Any:
        return await self.changed.until(condition, within, what)


class Clock:
    """Wall time that a test can move forward (to turn the quota day)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def redis(redis_server: Any) -> AsyncIterator[Redis]:
    client = connect_redis(RedisSettings(url=redis_server.url))
    yield client
    await client.aclose()


@pytest.fixture
def key() -> str:
    """An API key of the test's own (the quota is counted per key, in the shared Redis)."""
    return f"key-{uuid.uuid4().hex}"


@pytest.fixture
async def youtube(key: str) -> AsyncIterator[YouTubeDouble]:
    async with YouTubeDouble(api_key=key, polling_interval_ms=50) as double:
        yield double


def settings_for(double: YouTubeDouble, key: str | None, **overrides: Any) -> YouTubeSettings:
    values: dict[str, Any] = {
        "video_id": VIDEO,
        "api_key": key,
        "base_url": double.base_url,
        "token_url": double.token_url,
        "retry_min_s": 0.02,
        "retry_max_s": 0.2,
        "find_interval_s": 0.1,
        "budget_hours": 0,
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return YouTubeSettings(**values)


def new_room() -> str:
    return f"yt{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def running(chat: YouTubeChat, sink: RecordingSink) -> AsyncIterator[YouTubeChat]:
    stop = asyncio.Event()
    task = asyncio.create_task(chat.run(sink, stop))
    try:
        yield chat
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await chat.aclose()


async def following(double: YouTubeDouble, sink: RecordingSink) -> None:
    """Wait until the client has read the chat once (anything posted now comes after that)."""
    await sink.until(lambda: True in sink.states, "the client to follow the chat")
    await double.wait_until(lambda: double.pages, within=10)


def oauth_settings(
    double: YouTubeDouble, key: str, *, with_key: bool = True, **overrides: Any
) -> YouTubeSettings:
    """The channel's OAuth client (reads use the API key too unless `with_key` is False)."""
    double.add_oauth(channel_id=CHANNEL, client_id=f"client-{key}", refresh_token="refresh-1")
    return settings_for(
        double,
        key if with_key else None,
        client_id=f"client-{key}",
        client_secret="secret-1",
        refresh_token="refresh-1",
        **overrides,
    )


# -- mapping --------------------------------------------------------------------------------


async def test_each_item_type_becomes_the_right_platform_message(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO, channel_id=CHANNEL)
    sink = RecordingSink()
    owner = Author(CHANNEL, "The Streamer", owner=True)
    member = Author("UCmember00000000000000000", "Mia", sponsor=True)
    chat = YouTubeChat(settings_for(youtube, key), redis, new_room())
    async with running(chat, sink):
        await following(youtube, sink)
        posted = [
            youtube.post(VIDEO, "hello chat", author=owner, published_at=1_800_000_000.25),
            youtube.post(VIDEO, "keep it civil", author=MODERATOR),
            youtube.super_chat(VIDEO, "$5.00", "love the show", author=member),
            youtube.super_sticker(VIDEO, "€2.00"),
            youtube.new_member(VIDEO, "Gold Tier"),
            youtube.milestone(VIDEO, 12, "a whole year!", author=member),
            youtube.gift_memberships(VIDEO, 5),
        ]
        await sink.until(lambda: len(sink.submitted) >= len(posted), "every item")
    seen = [(m.message_id, m.user_id, m.user_name, m.text, m.event, m.amount, m.roles)
            for m in sink.submitted]  # fmt: skip
    ids = [item["id"] for item in posted]
    assert seen == [
        (ids[0], CHANNEL, "The Streamer", "hello chat", "message", "", ("broadcaster",)),
        (ids[1], MODERATOR.channel_id, "Mod Max", "keep it civil", "message", "", ("moderator",)),
        (ids[2], member.channel_id, "Mia", "love the show", "super_chat", "$5.00", ("member",)),
        (ids[3], VIEWER.channel_id, "Marta", "", "super_chat", "€2.00", ()),
        (ids[4], VIEWER.channel_id, "Marta", "", "membership", "Gold Tier", ()),
        (ids[5], member.channel_id, "Mia", "a whole year!", "membership", "12 months", ("member",)),
        (ids[6], VIEWER.channel_id, "Marta", "", "membership", "5 gifted", ()),
    ]
    assert all(m.platform == "youtube" for m in sink.submitted)
    assert sink.submitted[0].published_at_ms == 1_800_000_000_250
    assert abs(sink.submitted[1].published_at_ms - time.time() * 1000) < 60_000


def test_items_the_host_does_not_hear_are_ignored() -> None:
    now_ms = 1_700_000_000_000
    tombstone = {"id": "x", "snippet": {"type": "tombstone"}, "authorDetails": {}}
    no_author = {"id": "y", "snippet": {"type": "textMessageEvent"}}
    no_date = {
        "id": "z",
        "snippet": {"type": "textMessageEvent", "textMessageDetails": {"messageText": "hi"}},
        "authorDetails": {"channelId": "UCa", "displayName": "A"},
    }
    assert read_item(tombstone, now_ms) is None
    assert read_item(no_author, now_ms) is None
    assert read_item({"snippet": "garbage"}, now_ms) is None
    message = read_item(no_date, now_ms)
    assert isinstance(message, PlatformMessage) and message.published_at_ms == now_ms
    assert epoch_ms("2026-12-07T14:04:49.5Z") == 1_796_652_289_500
    assert epoch_ms("not a date") is None


def test_reply_text_is_the_addressed_text_cut_to_fit_youtube() -> None:
    # the bridge's replies address the author(s): no second mention here
    assert reply_text("@Marta Thanks!") == "@Marta Thanks!"
    assert reply_text("@Marta @Tom  Thanks!") == "@Marta @Tom Thanks!"
    long = reply_text("@Marta " + "word " * 100)
    assert len(long) <= 200 and long.startswith("@Marta word") and long.endswith(ELLIPSIS)


# -- paging, polling, resuming --------------------------------------------------------------


async def test_pages_follow_the_next_page_token_and_the_polling_interval(
    redis: Redis, key: str
) -> None:
    async with YouTubeDouble(api_key=key, polling_interval_ms=300, page_size=3) as youtube:
        youtube.go_live(VIDEO)
        sink = RecordingSink()
        chat = YouTubeChat(settings_for(youtube, key), redis, new_room())
        async with running(chat, sink):
            await following(youtube, sink)
            posted = [youtube.post(VIDEO, f"message {n}")["id"] for n in range(7)]
            await sink.until(lambda: len(sink.submitted) >= 7, "seven messages")
            pages_then = len(youtube.pages)
            await youtube.wait_until(lambda: len(youtube.pages) >= pages_then + 3, within=10)
        requests, pages = youtube.chat_requests, youtube.pages
    assert sink.ids() == posted
    # the burst came as three pages of at most three, without waiting between full pages
    sizes = [len(page["items"]) for page in pages if page["items"]]
    assert sizes == [3, 3, 1]
    assert "pageToken" not in requests[0].query
    for before, request, answer in zip(requests, requests[1:], pages, strict=False):
        assert request.query["pageToken"] == answer["nextPageToken"]
        if answer["pollingIntervalMillis"] == 300:
            assert request.received_at - before.received_at >= 0.3 * 0.9


async def test_a_restart_resumes_from_the_stored_page_token_without_duplicates(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    room = new_room()
    first = RecordingSink()
    async with running(YouTubeChat(settings_for(youtube, key), redis, room), first):
        await following(youtube, first)
        before = [youtube.post(VIDEO, f"before {n}")["id"] for n in range(3)]
        await first.until(lambda: len(first.submitted) >= 3, "the first three")
    requests_before_restart = len(youtube.chat_requests)
    last_token = youtube.pages[-1]["nextPageToken"]
    while_down = [youtube.post(VIDEO, f"while down {n}")["id"] for n in range(2)]

    second = RecordingSink()
    async with running(YouTubeChat(settings_for(youtube, key), redis, room), second):
        await second.until(lambda: len(second.submitted) >= 2, "the two posted while down")
        after = youtube.post(VIDEO, "after the restart")["id"]
        await second.until(lambda: after in second.ids(), "the message after the restart")
    assert first.ids() == before
    assert second.ids() == [*while_down, after]
    assert youtube.chat_requests[requests_before_restart].query["pageToken"] == last_token


async def test_a_page_the_sink_never_took_is_asked_again_after_a_restart(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    room = new_room()
    broken = RecordingSink(bus_down=1_000_000)  # NATS away for the whole first run
    async with running(YouTubeChat(settings_for(youtube, key), redis, room), broken):
        await following(youtube, broken)
        message = youtube.post(VIDEO, "while NATS was away")["id"]
        await youtube.wait_until(
            lambda: any(i["id"] == message for p in youtube.pages for i in p["items"])
        )
        await broken.until(lambda: broken.bus_down < 1_000_000 - 1, "a retried submit")
    healthy = RecordingSink()
    async with running(YouTubeChat(settings_for(youtube, key), redis, room), healthy):
        await healthy.until(lambda: message in healthy.ids(), "the message after the restart")
    assert broken.submitted == []
    assert healthy.ids() == [message]


async def test_the_first_start_hands_over_only_the_recent_backlog(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    old = youtube.post(VIDEO, "said ten minutes ago", published_at=time.time() - 600)["id"]
    recent = youtube.post(VIDEO, "said just now")["id"]
    sink = RecordingSink()
    async with running(YouTubeChat(settings_for(youtube, key), redis, new_room()), sink):
        await sink.until(lambda: sink.submitted, "the recent backlog message")
        later = youtube.post(VIDEO, "said after the start")["id"]
        await sink.until(lambda: later in sink.ids(), "the next message")
    assert sink.ids() == [recent, later]
    assert old not in sink.ids()


async def test_a_bus_outage_retries_the_rest_of_the_page(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    sink = RecordingSink()
    async with running(YouTubeChat(settings_for(youtube, key), redis, new_room()), sink):
        await following(youtube, sink)
        sink.bus_down = 2
        posted = [youtube.post(VIDEO, f"message {n}")["id"] for n in range(3)]
        await sink.until(lambda: len(sink.submitted) >= 3, "the page after the outage")
    assert sink.ids() == posted
    assert sink.bus_down == 0


# -- platform moderation --------------------------------------------------------------------


async def test_deletions_and_bans_become_remove_calls(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    sink = RecordingSink()
    troll = Author("UCtroll000000000000000000", "Troll")
    async with running(YouTubeChat(settings_for(youtube, key), redis, new_room()), sink):
        await following(youtube, sink)
        rude = youtube.post(VIDEO, "something rude", author=troll)["id"]
        await sink.until(lambda: rude in sink.ids(), "the rude message")
        youtube.delete_message(VIDEO, rude)
        youtube.ban(VIDEO, troll, seconds=300)
        youtube.ban(VIDEO, VIEWER)
        await sink.until(lambda: len(sink.removed_users) >= 2, "the two bans")
    assert sink.removed_messages == [("youtube", rude)]
    assert sink.removed_users == [("youtube", troll.channel_id), ("youtube", VIEWER.channel_id)]


# -- finding the chat -----------------------------------------------------------------------


async def test_not_live_then_live_then_ended_then_live_again(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.scheduled(VIDEO)
    sink = RecordingSink()
    async with running(YouTubeChat(settings_for(youtube, key), redis, new_room()), sink) as chat:
        await sink.until(lambda: sink.outcomes("not_live"), "a not-live report")
        first_chat = youtube.go_live(VIDEO)
        await following(youtube, sink)
        one = youtube.post(VIDEO, "first show")["id"]
        await sink.until(lambda: one in sink.ids(), "the first show's message")
        assert chat.chat_id == first_chat
        reports = len(sink.outcomes("not_live"))
        youtube.end(VIDEO)
        await sink.until(lambda: len(sink.outcomes("not_live")) > reports, "not live again")
        assert chat.chat_id is None
        youtube.go_live(VIDEO)
        await sink.until(lambda: chat.chat_id not in (None, first_chat), "the second show's chat")
        two = youtube.post(VIDEO, "second show")["id"]
        await sink.until(lambda: two in sink.ids(), "the second show's message")
    assert sink.ids() == [one, two]
    assert f"video {VIDEO} has no live chat yet" in sink.outcomes("not_live")[0]


async def test_a_channel_follows_its_active_broadcast_through_oauth(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live("otherVideo1", channel_id="UCsomeoneelse00000000000")
    youtube.go_live(VIDEO, channel_id=CHANNEL)
    settings = oauth_settings(youtube, key, with_key=False, video_id="", channel_id=CHANNEL)
    sink = RecordingSink()
    async with running(YouTubeChat(settings, redis, new_room()), sink):
        await following(youtube, sink)
        message = youtube.post(VIDEO, "found you")["id"]
        await sink.until(lambda: message in sink.ids(), "the channel's chat message")
    lookup = youtube.requests_to("/youtube/v3/liveBroadcasts")[0]
    assert lookup.query["broadcastStatus"] == "active" and "mine" not in lookup.query
    assert lookup.bearer and lookup.bearer.startswith("ya29.")
    assert sink.ids() == [message]


# -- trouble --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trouble", "outcome"),
    [
        (Fault.HTTP_500, "unavailable"),
        (Fault.HTTP_401, "unauthorized"),
        (Fault.HANG, "unavailable"),
        ("rateLimitExceeded", "rate_limited"),
    ],
)
async def test_trouble_is_reported_and_recovered_from(
    youtube: YouTubeDouble, redis: Redis, key: str, trouble: Fault | str, outcome: str
) -> None:
    youtube.go_live(VIDEO)
    sink = RecordingSink()
    settings = settings_for(youtube, key, timeout_s=1.0)
    async with running(YouTubeChat(settings, redis, new_room()), sink):
        await following(youtube, sink)
        if isinstance(trouble, Fault):
            youtube.fail(trouble, times=2)
        else:
            youtube.refuse(trouble, times=2)
        message = youtube.post(VIDEO, "still there?")["id"]
        await sink.until(lambda: message in sink.ids(), "the message after the trouble")
    # one report per failed call (the sink logs once per change); a slow answer on a loaded
    # machine may add an `unavailable` of its own, so count only this trouble's
    assert sink.problems[0][1] == outcome and len(sink.outcomes(outcome)) >= 2
    down = sink.states.index(False)
    assert True in sink.states[down:]  # connected again after the trouble


async def test_a_wrong_key_is_reported_as_unauthorized(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    sink = RecordingSink()
    chat = YouTubeChat(settings_for(youtube, "not-the-key"), redis, new_room())
    async with running(chat, sink):
        detail = await sink.until(lambda: sink.outcomes("unauthorized"), "an unauthorized report")
    assert "API key not valid" in detail[0] and "BRIDGE_YOUTUBE_API_KEY" in detail[0]


async def test_an_expired_access_token_is_refreshed(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO, channel_id=CHANNEL)
    sink = RecordingSink()
    chat = YouTubeChat(oauth_settings(youtube, key, with_key=False), redis, new_room())
    async with running(chat, sink):
        await following(youtube, sink)
        youtube.expire_access_tokens()
        message = youtube.post(VIDEO, "after the token expired")["id"]
        await sink.until(lambda: message in sink.ids(), "the message after the refresh")
    assert len(youtube.token_requests) == 2
    assert sink.outcomes("unauthorized") == []


async def test_a_refused_refresh_token_is_reported(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO, channel_id=CHANNEL)
    settings = oauth_settings(youtube, key, with_key=False)
    settings = settings.model_copy(update={"refresh_token": SecretStr("revoked")})
    sink = RecordingSink()
    async with running(YouTubeChat(settings, redis, new_room()), sink):
        detail = await sink.until(lambda: sink.outcomes("unauthorized"), "an unauthorized report")
    assert "invalid_grant" in detail[0] and "BRIDGE_YOUTUBE_REFRESH_TOKEN" in detail[0]


async def test_youtube_quota_exceeded_stops_polling_until_the_day_turns(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    clock = Clock()
    sink = RecordingSink()
    chat = YouTubeChat(settings_for(youtube, key), redis, new_room(), clock=clock)
    async with running(chat, sink):
        await following(youtube, sink)
        youtube.refuse("quotaExceeded")
        message = youtube.post(VIDEO, "posted while out of quota")["id"]
        await sink.until(lambda: sink.outcomes("quota"), "a quota report")
        asked = len(youtube.chat_requests)
        await sink.until(lambda: len(sink.outcomes("quota")) >= 3, "the quota checked again")
        assert len(youtube.chat_requests) == asked  # no call while the day's quota is spent
        assert message not in sink.ids()
        clock.offset += seconds_to_next_quota_day(clock()) + 1
        await sink.until(lambda: message in sink.ids(), "the message on the next quota day")
    assert "quotaExceeded" in sink.outcomes("quota")[0]


async def test_the_daily_budget_warns_at_80_percent_and_stops_at_100(
    youtube: YouTubeDouble, redis: Redis, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    youtube.go_live(VIDEO)
    sink = RecordingSink()
    chat = YouTubeChat(settings_for(youtube, key, daily_quota=40), redis, new_room())
    with caplog.at_level(logging.WARNING, logger="chat_bridge.youtube"):
        async with running(chat, sink):
            detail = await sink.until(lambda: sink.outcomes("quota"), "the budget to run out")
            asked = len(youtube.chat_requests)
            await sink.until(lambda: len(sink.outcomes("quota")) >= 3, "the quota checked again")
            assert len(youtube.chat_requests) == asked
            used = await chat.quota.used()
    # 1 unit for the lookup, then 5 a page: 7 pages fit in 40 units, the 8th would not
    assert youtube.units_used == used == 36
    assert len(youtube.chat_requests) == 7
    assert "BRIDGE_YOUTUBE_DAILY_QUOTA" in detail[0]
    warnings = [r for r in caplog.records if "of 40 units used today" in r.getMessage()]
    assert len(warnings) == 1 and "36 of 40" in warnings[0].getMessage()


def test_polling_stretches_so_the_budget_lasts() -> None:
    four_hours = 4 * 3600
    assert poll_interval_s(1000, units_left=10_000, horizon_s=four_hours) == pytest.approx(7.2)
    assert poll_interval_s(1000, units_left=1_000, horizon_s=four_hours) == pytest.approx(72)
    assert poll_interval_s(9000, units_left=10_000, horizon_s=four_hours) == 9.0
    assert poll_interval_s(1000, units_left=10_000, horizon_s=0) == 1.0


def test_the_quota_day_is_pacific_time_with_daylight_saving() -> None:
    # 2026-03-08 is the day clocks spring forward in the US: a 23-hour quota day
    start_of_day = 1_772_956_800.0  # 2026-03-08T08:00:00Z = midnight PST
    assert quota_day(start_of_day - 1) == "2026-03-07"
    assert quota_day(start_of_day) == "2026-03-08"
    assert seconds_to_next_quota_day(start_of_day) == 23 * 3600
    assert seconds_to_next_quota_day(start_of_day + 3600) == 22 * 3600


# -- replies --------------------------------------------------------------------------------


async def test_a_reply_posts_one_insert_with_the_right_body_and_auth(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    chat_id = youtube.go_live(VIDEO, channel_id=CHANNEL)
    sink = RecordingSink()
    chat = YouTubeChat(oauth_settings(youtube, key), redis, new_room())
    async with running(chat, sink):
        await following(youtube, sink)
        question = youtube.post(VIDEO, "what is on screen?")["id"]
        await sink.until(lambda: question in sink.ids(), "the question")
        used_before = await chat.quota.used()
        target = ReplyTarget("youtube", question, VIEWER.channel_id, "Marta")
        assert await chat.reply(target, "@Marta A map of the moon!") is True
        later = youtube.post(VIDEO, "cool")["id"]
        await sink.until(lambda: later in sink.ids(), "the message after the reply")
        used_after = await chat.quota.used()
    [insert] = [
        r for r in youtube.requests_to("/youtube/v3/liveChat/messages") if r.method == "POST"
    ]
    assert insert.query == {"part": "snippet"}
    assert insert.json == {
        "snippet": {
            "liveChatId": chat_id,
            "type": "textMessageEvent",
            "textMessageDetails": {"messageText": "@Marta A map of the moon!"},
        }
    }
    assert insert.bearer in youtube.grants["refresh-1"].access_tokens
    assert used_after - used_before >= 50
    # the bridge's own reply, now in the chat, is not handed back as a viewer's message
    assert sink.ids() == [question, later]


async def test_a_reply_without_oauth_is_refused(
    youtube: YouTubeDouble, redis: Redis, key: str
) -> None:
    youtube.go_live(VIDEO)
    sink = RecordingSink()
    chat = YouTubeChat(settings_for(youtube, key), redis, new_room())
    async with running(chat, sink):
        await following(youtube, sink)
        target = ReplyTarget("youtube", "LCC.x", VIEWER.channel_id, "Marta")
        assert await chat.reply(target, "hello") is False
    assert youtube.inserted == []


# -- configuration --------------------------------------------------------------------------


async def test_from_settings_says_what_a_half_configuration_lacks(redis: Redis) -> None:
    base = "http://127.0.0.1:9/youtube/v3"
    assert from_settings(redis, settings=YouTubeSettings(base_url=base)) is None
    with pytest.raises(ValueError, match="BRIDGE_YOUTUBE_API_KEY"):
        from_settings(redis, settings=YouTubeSettings(video_id=VIDEO))
    with pytest.raises(ValueError, match="BRIDGE_YOUTUBE_REFRESH_TOKEN"):
        from_settings(redis, settings=YouTubeSettings(channel_id=CHANNEL, api_key="k"))
    with pytest.raises(ValueError, match="BRIDGE_YOUTUBE_CLIENT_SECRET"):
        from_settings(
            redis,
            settings=YouTubeSettings(video_id=VIDEO, api_key="k", client_id="c", refresh_token="r"),
        )
    with pytest.raises(ValueError, match="not both"):
        from_settings(
            redis, settings=YouTubeSettings(video_id=VIDEO, channel_id=CHANNEL, api_key="k")
        )
    chat = from_settings(redis, settings=YouTubeSettings(video_id=VIDEO, api_key="k"), room="show1")
    assert isinstance(chat, YouTubeChat) and chat.room == "show1" and chat.platform == "youtube"
    await chat.aclose()
