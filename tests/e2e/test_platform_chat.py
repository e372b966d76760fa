"""YouTube Live and Twitch chat end to end (#18's proofs), every piece real: the Twitch and
YouTube doubles speak their platforms' protocols to chat-bridge running as a process
(`python -m chat_bridge`, reaching them through its URL settings); the real moderation and
chat-history processes judge, store and send through LiveKit to an rtc viewer; a real host
worker (local voice) answers on `host.spoken`; NATS, Redis and livekit-server are the
session's.

- both platforms' lines reach the viewer once each with their `source` and platform identity,
  the host answers each by name and platform, and each double gets one reply per answered
  comment;
- a profane platform line is rejected and reaches nobody;
- Twitch's `session_reconnect` (and a dropped socket) mid-stream loses and repeats nothing;
- a SIGKILL of the bridge and a restart: YouTube resumes from the stored page token, Twitch
  subscribes again;
- the platforms' own deletions and bans remove lines from the viewer;
- an expired Twitch token, YouTube's 5xx and its 403 quota error are one log line and a metric
  each while page chat keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from chat_bridge.convert import chat_id
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import ChatMessage, ModerationVerdict, Platform, SpokenTurn
from tests.doubles.base import Fault
from tests.doubles.twitch import Chatter
from tests.doubles.youtube import Author
from tests.support import otlp
from tests.support.bus import connected_bus
from tests.support.chat import ChatViewer, backend_env, chat_message, chat_services
from tests.support.host_events import HostEvents, following
from tests.support.host_worker import HostWorker, running_worker
from tests.support.platforms import (
    BridgeProcess,
    PlatformDoubles,
    bridge_env,
    platform_doubles,
    running_bridge,
)
from tests.support.waiting import Changed

MARTA = Chatter("1001", "Marta")
OLEG = Chatter("1002", "Oleg")
VERA = Chatter("1003", "Vera")
LU = Author("UClu0000000000000000000a", "Lu", sponsor=True)
MAX = Author("UCmax000000000000000000a", "Max")
RUDE = Author("UCrude00000000000000000a", "Rudy")


# -- what the tests share ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The real moderation and chat-history processes, for every test of the module (they
    serve every room)."""
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


@pytest.fixture(scope="module")
async def host(livekit_server, nats_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    """A real host worker (local voice); a test dispatches it to its room."""
    async with running_worker(livekit_server, nats_server) as worker:
        yield worker


@pytest.fixture
async def doubles() -> AsyncIterator[PlatformDoubles]:
    async with platform_doubles() as made:
        yield made


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


@pytest.fixture
def room() -> str:
    return "platform-" + uuid.uuid4().hex[:10]


Show = Callable[..., contextlib.AbstractAsyncContextManager[tuple[BridgeProcess, ChatViewer]]]


@pytest.fixture
def show(  # type: ignore[no-untyped-def]
    chat_path: dict[str, Any],
    doubles: PlatformDoubles,
    room: str,
    nats_server,
    redis_server,
    livekit_server,
) -> Show:
    """`async with show(**settings) as (bridge, viewer)`: the test's room on the chat path, a
    chat-bridge process following both doubles into it (`settings` add `BRIDGE_*` or OTEL
    variables) and an rtc viewer in it; ready when the bridge follows both chats."""

    @contextlib.asynccontextmanager
    async def started(**settings: str) -> AsyncIterator[tuple[BridgeProcess, ChatViewer]]:
        env = bridge_env(room, nats_server, redis_server, doubles, **settings)
        async with (
            running_bridge(env) as bridge,
            ChatViewer.joined(livekit_server, room) as viewer,
        ):
            await bridge.following(doubles)
            yield bridge, viewer

    return started


@pytest.fixture
async def show_bus(nats_server) -> AsyncIterator[Bus]:  # type: ignore[no-untyped-def]
    async with connected_bus(nats_server, "platform-chat-e2e") as bus:
        yield bus


async def rejections(bus: Bus, room: str) -> tuple[dict[str, ModerationVerdict], Changed]:
    """Moderation's rejections in `room` from now on, by message id, as they come."""
    rejected: dict[str, ModerationVerdict] = {}
    changed = Changed()

    async def on_rejected(observed: Observed[ModerationVerdict]) -> None:
        rejected[observed.model.message_id] = observed.model
        changed.notify()

    await bus.watch(subjects.chat_rejected(room), ModerationVerdict, on_rejected, start=time.time())
    return rejected, changed


async def answered(events: HostEvents, message_id: str) -> SpokenTurn:
    """The host's turn that answered `message_id` (bounded wait)."""
    return await events.changed.until(
        lambda: events.answer_to(message_id), 30, f"the host's answer to {message_id}"
    )


Hosted = Callable[
    ..., contextlib.AbstractAsyncContextManager[tuple[BridgeProcess, ChatViewer, HostEvents]]
]


@pytest.fixture
def hosted(show: Show, host: HostWorker, show_bus: Bus, room: str) -> Hosted:
    """`show`, with the host dispatched to the room and live: `async with hosted(**settings) as
    (bridge, viewer, events)`, `events` the room's `host.spoken` and `host.job`."""

    @contextlib.asynccontextmanager
    async def started(
        **settings: str,
    ) -> AsyncIterator[tuple[BridgeProcess, ChatViewer, HostEvents]]:
        async with following(show_bus, room) as events, show(**settings) as (bridge, viewer):
            await host.dispatch(room)
            await events.changed.until(lambda: events.job("live"), 30, "the host's job to go live")
            yield bridge, viewer, events

    return started


async def arrived(viewer: ChatViewer, platform: Platform, message_id: str) -> ChatMessage:
    """The viewer's copy of the platform message `message_id` (bounded wait)."""
    return await viewer.wait_for_message(chat_id(platform, message_id), within=20)


async def all_arrived(viewer: ChatViewer, platform: Platform, message_ids: list[str]) -> None:
    """Until every one of the platform messages `message_ids` reached the viewer (bounded)."""
    wanted = {chat_id(platform, m) for m in message_ids}
    await viewer.wait_until(lambda: wanted <= set(viewer.message_ids()), 30)


def once_each(viewer: ChatViewer, ids: list[str]) -> None:
    """Every one of `ids` reached the viewer exactly once."""
    seen = viewer.message_ids()
    counts = {message_id: seen.count(message_id) for message_id in ids}
    assert all(count == 1 for count in counts.values()), counts


# -- the proofs --------------------------------------------------------------------------------


async def test_twitch_and_youtube_lines_reach_the_viewer_and_the_host_answers_each_by_name_once(
    hosted: Hosted, doubles: PlatformDoubles
) -> None:
    twitch, youtube = doubles.twitch, doubles.youtube
    async with hosted(BRIDGE_REPLIES="true") as (bridge, viewer, events):
        # Twitch: a moderator and subscriber asks; the viewer sees it with its source
        twitch_id = await twitch.chat(
            MARTA, "Is the stream live on Twitch too?", badges=("moderator", "subscriber")
        )
        line = await arrived(viewer, "twitch", twitch_id)
        assert (line.author_identity, line.author_name, line.avatar) == (
            "twitch:1001",
            "Marta",
            "twitch",
        )
        assert line.body == "Is the stream live on Twitch too?" and line.kind == "viewer"
        assert line.source is not None
        assert (line.source.platform, line.source.user_id, line.source.message_id) == (
            "twitch",
            "1001",
            twitch_id,
        )
        assert line.source.roles == ["moderator", "subscriber"]
        answer = await answered(events, line.id)
        assert "Marta on Twitch" in answer.text, answer

        # YouTube: a member asks; the same
        item = youtube.post(doubles.video_id, "What are we looking at tonight?", author=LU)
        yt_line = await arrived(viewer, "youtube", item["id"])
        assert (yt_line.author_identity, yt_line.author_name, yt_line.avatar) == (
            f"youtube:{LU.channel_id}",
            "Lu",
            "youtube",
        )
        assert yt_line.source is not None
        assert (yt_line.source.platform, yt_line.source.user_id, yt_line.source.message_id) == (
            "youtube",
            LU.channel_id,
            item["id"],
        )
        assert yt_line.source.roles == ["member"]
        yt_answer = await answered(events, yt_line.id)
        assert "Lu on YouTube" in yt_answer.text, yt_answer

        # replies back: one per answered comment, in each platform's own API
        def twitch_replies() -> list[dict[str, Any]]:
            return [m for m in twitch.chat_sent if m.get("reply_parent_message_id") == twitch_id]

        def youtube_replies() -> list[dict[str, Any]]:
            return [
                item
                for item in youtube.inserted
                if item["snippet"]["displayMessage"].startswith("@Lu ")
            ]

        (twitch_reply,) = await twitch.wait_until(twitch_replies, 20)
        assert twitch_reply["message"].startswith("@Marta ")
        assert twitch_reply["sender_id"] == twitch.bot.user_id
        (youtube_reply,) = await youtube.wait_until(youtube_replies, 20)
        assert youtube_reply["snippet"]["liveChatId"] == youtube.videos[doubles.video_id]
        # what the host said, in text, after the mention
        assert answer.text.startswith(twitch_reply["message"].removeprefix("@Marta ")[:20])
        yt_text = youtube_reply["snippet"]["displayMessage"].removeprefix("@Lu ")
        assert yt_answer.text.startswith(yt_text[:20])

        # a later line from each platform arrives, and by then the first ones once each; the
        # bot's own replies (the platforms echo them into chat) never came back as viewer chat
        later_twitch = await twitch.chat(OLEG, "great stream")
        later_youtube = youtube.post(doubles.video_id, "hello from YouTube", author=MAX)
        await arrived(viewer, "twitch", later_twitch)
        await arrived(viewer, "youtube", later_youtube["id"])
        once_each(viewer, [line.id, yt_line.id])
        assert chat_id("youtube", youtube_reply["id"]) not in viewer.message_ids()
        assert all(not m.body.startswith(("@Marta", "@Lu")) for m in viewer.messages())
        assert len(twitch_replies()) == len(youtube_replies()) == 1


async def test_a_profane_platform_line_is_rejected_and_reaches_nobody(
    hosted: Hosted, doubles: PlatformDoubles, room: str, show_bus: Bus
) -> None:
    twitch, youtube = doubles.twitch, doubles.youtube
    rejected, judged = await rejections(show_bus, room)
    async with hosted() as (bridge, viewer, events):
        profane_twitch = await twitch.chat(VERA, "you are a fucking idiot")
        profane_youtube = youtube.post(doubles.video_id, "what a load of shit, idiot", author=RUDE)
        clean_twitch = await twitch.chat(OLEG, "what is on screen now?")
        clean_youtube = youtube.post(doubles.video_id, "hi from YouTube, host!", author=MAX)

        profane = [chat_id("twitch", profane_twitch), chat_id("youtube", profane_youtube["id"])]
        await judged.until(lambda: set(profane) <= set(rejected), 20, "the rejections")
        assert all(rejected[i].verdict == "rejected" for i in profane)
        await arrived(viewer, "twitch", clean_twitch)
        await arrived(viewer, "youtube", clean_youtube["id"])
        # the host hears the clean lines; both were judged after the profane ones were
        clean = [chat_id("twitch", clean_twitch), chat_id("youtube", clean_youtube["id"])]
        for message_id in clean:
            await answered(events, message_id)
        assert not set(profane) & set(viewer.message_ids())
        assert not any(set(profane) & set(turn.reply_to) for turn in events.spoken)
        assert viewer.rejections() == []  # a rejection goes to its author alone (not here)


async def test_twitch_session_reconnect_and_a_dropped_socket_mid_stream_lose_and_repeat_nothing(
    show: Show,
    doubles: PlatformDoubles,
) -> None:
    twitch = doubles.twitch
    # Twitch may deliver again what it sent before the move; and the move takes a moment, in
    # which notifications still go to the old socket
    twitch.redeliver_after_reconnect = 4
    twitch.reconnect_welcome_delay_s = 0.3
    chatters = [Chatter(str(2000 + n), f"Viewer{n}") for n in range(8)]
    async with show() as (bridge, viewer):
        first_session = twitch.subscribed_session()
        sent: list[str] = []
        for n in range(24):  # at a lively chat's pace (moderation's room rate allows 15/s)
            if n == 8:
                await twitch.reconnect()
            sent.append(await twitch.chat(chatters[n % 8], f"message number {n} of the stream"))
            await asyncio.sleep(0.1)  # pacing the audience, not waiting for an event
        assert any(s.path == f"/ws/reconnect/{first_session}" for s in twitch.sockets)
        await all_arrived(viewer, "twitch", sent)
        # the session moved with its subscriptions: none was created again
        assert first_session is not None
        created = twitch.created_for(first_session)
        assert len(created) == len(set(created)), created

        # the network drops the socket (no close frame): the bridge reconnects at once and
        # subscribes a new session; what is said from then on arrives (EventSub itself does not
        # replay what was said while nobody listened)
        await twitch.drop()
        await twitch.wait_until(
            lambda: (s := twitch.subscribed_session()) is not None and s != first_session, 30
        )
        after: list[str] = []
        for n in range(8):
            after.append(await twitch.chat(chatters[n], f"after the drop, line {n}"))
            await asyncio.sleep(0.1)
        await all_arrived(viewer, "twitch", after)
        once_each(viewer, [chat_id("twitch", m) for m in sent + after])
        assert bridge.process.poll() is None


async def test_after_a_sigkill_youtube_resumes_from_its_page_token_and_twitch_reconnects(
    show: Show,
    doubles: PlatformDoubles,
) -> None:
    twitch, youtube, video = doubles.twitch, doubles.youtube, doubles.video_id
    async with show() as (bridge, viewer):
        before = [youtube.post(video, f"before the crash {n}", author=MAX)["id"] for n in range(3)]
        twitch_before = await twitch.chat(MARTA, "hello before the crash")
        await all_arrived(viewer, "youtube", before)
        await arrived(viewer, "twitch", twitch_before)

        old_session = twitch.subscribed_session()
        await bridge.kill()
        killed_at = time.monotonic()
        during = [youtube.post(video, f"while it was down {n}", author=LU)["id"] for n in range(3)]
        await bridge.start()
        await bridge.following(doubles)
        assert bridge.lines_with("resuming from the stored page token"), bridge.text()
        # its first page after the restart starts where the last run stopped, not at "recent"
        first = await youtube.wait_until(
            lambda: next((r for r in youtube.chat_requests if r.received_at > killed_at), None)
        )
        assert first.query.get("pageToken"), first.query
        await twitch.wait_until(
            lambda: (s := twitch.subscribed_session()) is not None and s != old_session, 30
        )
        after = youtube.post(video, "after the restart", author=MAX)["id"]
        await all_arrived(viewer, "youtube", [*during, after])
        twitch_after = await twitch.chat(MARTA, "hello after the restart")
        await arrived(viewer, "twitch", twitch_after)

        once_each(
            viewer,
            [chat_id("youtube", m) for m in [*before, *during, after]]
            + [chat_id("twitch", m) for m in (twitch_before, twitch_after)],
        )


async def test_platform_deletions_and_bans_remove_lines_from_the_viewer(
    show: Show,
    doubles: PlatformDoubles,
) -> None:
    twitch, youtube, video = doubles.twitch, doubles.youtube, doubles.video_id
    async with show() as (bridge, viewer):
        yt = [
            youtube.post(video, "first line from Lu", author=LU)["id"],
            youtube.post(video, "second line from Lu", author=LU)["id"],
            youtube.post(video, "Max says hi", author=MAX)["id"],
        ]
        tw = [
            await twitch.chat(VERA, "first line from Vera"),
            await twitch.chat(VERA, "second line from Vera"),
            await twitch.chat(OLEG, "Oleg says hi"),
        ]
        await all_arrived(viewer, "youtube", yt)
        await all_arrived(viewer, "twitch", tw)

        # a moderator deletes one line on each platform
        youtube.delete_message(video, yt[0])
        await twitch.delete_message(tw[0], VERA)
        deleted = {chat_id("youtube", yt[0]), chat_id("twitch", tw[0])}
        await viewer.wait_until(lambda: deleted <= set(viewer.removals()), 20)

        # then bans the author (YouTube) or clears their chat (Twitch): their other line goes
        youtube.ban(video, LU)
        await twitch.clear_user(VERA)
        banned = {chat_id("youtube", yt[1]), chat_id("twitch", tw[1])}
        await viewer.wait_until(lambda: banned <= set(viewer.removals()), 20)
        # the other authors' lines stay (a later line shows the bans were all handled by then)
        later = await twitch.chat(OLEG, "still here")
        await arrived(viewer, "twitch", later)
        kept = {chat_id("youtube", yt[2]), chat_id("twitch", tw[2])}
        assert not kept & set(viewer.removals())


async def test_an_expired_token_a_quota_error_and_a_5xx_are_each_one_log_line_and_a_metric(
    show: Show,
    doubles: PlatformDoubles,
    room: str,
    show_bus: Bus,
    collector: otlp.OtlpCollector,
) -> None:
    twitch, youtube, video = doubles.twitch, doubles.youtube, doubles.video_id
    settings = {
        "BRIDGE_TWITCH_VALIDATE_EVERY_S": "0.3",  # Twitch asks for hourly; a test has seconds
        **otlp.fast_export_env(collector.url),
    }

    async def page_chat_still_works(body: str) -> None:
        """A page viewer's line (as the edge submits it) reaches the viewer meanwhile."""
        message = chat_message(room, body)
        await show_bus.publish(subjects.chat_submitted(room), message)
        await viewer.wait_for_message(message.id, within=20)

    def problems(platform: str, outcome: str) -> float:
        """The bridge's count so far (a cumulative counter: its latest export is its largest)."""
        return max(
            (
                point.value
                for point in list(collector.received.points)
                if point.metric == "livestage.bridge.problems"
                and point.attributes.get("platform") == platform
                and point.attributes.get("outcome") == outcome
            ),
            default=0.0,
        )

    async def reported(platform: str, outcome: str) -> None:
        await asyncio.to_thread(
            collector.wait_for,
            lambda _: problems(platform, outcome) >= 1,
            20,
            f"livestage.bridge.problems{{platform={platform},outcome={outcome}}}",
        )

    async with show(**settings) as (bridge, viewer):
        # YouTube answers 500 three times: one line, a metric; then it recovers
        youtube.fail(Fault.HTTP_500, times=3)
        line = await bridge.wait_for_line("YouTube chat: unavailable")
        assert "500" in line and "backendError" in line, line
        await reported("youtube", "unavailable")
        await page_chat_still_works("page chat while YouTube fails")
        recovered = youtube.post(video, "YouTube is back", author=MAX)["id"]
        await arrived(viewer, "youtube", recovered)
        assert len(bridge.lines_with("YouTube chat: unavailable")) == 1, bridge.text()

        # the bot's Twitch token expires and Twitch refuses to refresh it
        twitch.refuse_refresh = True
        twitch.expire_access_tokens()
        line = await bridge.wait_for_line("Twitch chat: unauthorized")
        assert "refresh" in line.lower(), line
        await reported("twitch", "unauthorized")
        await page_chat_still_works("page chat while Twitch refuses the bot")
        # validated again and again (every 0.3 s), still one line
        await asyncio.to_thread(
            collector.wait_for,
            lambda _: problems("twitch", "unauthorized") >= 3,
            20,
            "three failed validations",
        )
        assert len(bridge.lines_with("Twitch chat: unauthorized")) == 1, bridge.text()

        # YouTube says the day's quota is spent: the bridge stops calling until it turns
        youtube.refuse("quotaExceeded")
        line = await bridge.wait_for_line("YouTube chat: quota")
        assert "quotaExceeded" in line, line
        await reported("youtube", "quota")
        await page_chat_still_works("page chat while YouTube's quota is spent")
        assert len(bridge.lines_with("YouTube chat: quota")) == 1, bridge.text()
        assert bridge.process.poll() is None
