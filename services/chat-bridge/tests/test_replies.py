"""Replies back to the platforms: one per answered comment whatever the replicas and
redeliveries, within each platform's send limit (real NATS JetStream and Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from limits import parse
from redis.asyncio import Redis

from chat_bridge.convert import chat_id
from chat_bridge.publish import BridgeSink
from chat_bridge.records import Records
from chat_bridge.replies import Replies, ReplyLimiter, redis_limits_storage
from chat_bridge.source import PlatformChat
from livestage import metrics, subjects
from livestage.bus import Bus
from livestage.schemas import SpokenTurn, new_id, now_ms
from livestage.settings import NatsSettings
from tests.support.bus import connected_bus
from tests.support.waiting import until

from .conftest import Metrics, ScriptedPlatform, item, unique_room

REPLIES = metrics.BRIDGE_REPLIES.name


def turn(room: str, text: str, answered: list[str]) -> SpokenTurn:
    return SpokenTurn(
        id=new_id(),
        room=room,
        text=text,
        reply_to=answered,
        started_at=now_ms(),
        ended_at=now_ms(),
    )


def limiter(
    redis: Redis, url: str, room: str, rate: str = "100/minute", wait_s: float = 0.0
) -> ReplyLimiter:
    rates = {"twitch": parse(rate), "youtube": parse(rate)}
    return ReplyLimiter(redis_limits_storage(url, redis), room, rates, wait_s)


async def test_one_reply_per_answered_comment_with_two_replicas_and_a_redelivery(  # type: ignore[no-untyped-def]
    bridge_bus: Bus, redis: Redis, nats_server, redis_server
) -> None:
    room = unique_room()
    records = Records(redis, room, 3600)
    sink = BridgeSink(bridge_bus, records, room, meter=Metrics().meter)
    marta = item("twitch", "hi host!", user_name="Marta")
    tom = item("twitch", "what's that?", user_name="Tom")
    yuki = item("youtube", "hello from Osaka", user_name="@yuki")
    for message in (marta, tom, yuki):
        await sink.submit(message)
    twitch, youtube = ScriptedPlatform("twitch"), ScriptedPlatform("youtube")
    twitch.reply_gate = asyncio.Event()  # the first replica's post hangs, then it dies
    platforms: dict[str, PlatformChat] = {"twitch": twitch, "youtube": youtube}
    answered = [chat_id(m.platform, m.message_id) for m in (marta, tom, yuki)] + [new_id()]
    spoken = turn(room, "Hello Marta, Tom and Yuki! That is the moon.", answered)

    first, second = Metrics(), Metrics()
    stops = [asyncio.Event(), asyncio.Event()]
    first_bus = await Bus.connect(NatsSettings(url=nats_server.url), "replies-first")

    def replica(bus: Bus, measured: Metrics) -> Replies:
        return Replies(
            bus,
            records,
            room,
            platforms,
            limiter(redis, redis_server.url, room),
            30.0,
            measured.meter,
        )

    tasks = [asyncio.create_task(replica(first_bus, first).run(stops[0], first_wait_s=1.0))]
    async with connected_bus(nats_server, "replies-second") as second_bus:
        try:
            await bridge_bus.publish(subjects.host_spoken(room), spoken)
            await twitch.changed.until(lambda: twitch.replies, 15, "the first replica's post")
            await youtube.changed.until(lambda: youtube.replies, 15, "its YouTube post")
            # the second replica starts; the first dies before it could ack (JetStream redelivers)
            tasks.append(
                asyncio.create_task(replica(second_bus, second).run(stops[1], first_wait_s=1.0))
            )
            await first_bus.nc.close()
            # and the host's turn is published once more (a republish, under another id)
            await bridge_bus.publish(subjects.host_spoken(room), spoken, msg_id=new_id())
            await until(  # both Twitch comments, on the redelivery and on the republish
                lambda: second.count(REPLIES, platform="twitch", outcome="duplicate") >= 4,
                20,
                "the second replica to find every Twitch comment answered, twice",
            )
        finally:
            twitch.reply_gate.set()
            for stop in stops:
                stop.set()
            for task in tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)
            await first_bus.close()

    [(target, text)] = twitch.replies  # one post for both Twitch comments of the turn
    assert target.message_id == marta.message_id
    assert text == "@Marta @Tom Hello Marta, Tom and Yuki! That is the moon."
    [(target, text)] = youtube.replies
    assert (target.message_id, text) == (
        yuki.message_id,
        "@yuki Hello Marta, Tom and Yuki! That is the moon.",
    )
    assert (
        first.count(REPLIES, platform="youtube", outcome="sent")
        + second.count(REPLIES, platform="youtube", outcome="sent")
        == 1
    )
    assert second.count(REPLIES, platform="youtube", outcome="duplicate") == 2


async def test_a_reply_over_the_send_limit_is_dropped_and_counted(  # type: ignore[no-untyped-def]
    bridge_bus: Bus, redis: Redis, redis_server
) -> None:
    room, measured = unique_room(), Metrics()
    records = Records(redis, room, 3600)
    sink = BridgeSink(bridge_bus, records, room, meter=Metrics().meter)
    twitch = ScriptedPlatform("twitch")
    replies = Replies(
        bridge_bus,
        records,
        room,
        {"twitch": twitch},
        limiter(redis, redis_server.url, room, rate="2/30seconds", wait_s=0.0),
        5.0,
        measured.meter,
    )
    comments = [item("twitch", f"question {n}", user_name=f"viewer{n}") for n in range(3)]
    for comment in comments:
        await sink.submit(comment)
        await replies.answer(turn(room, "Good one.", [chat_id("twitch", comment.message_id)]))

    assert [text for _, text in twitch.replies] == ["@viewer0 Good one.", "@viewer1 Good one."]
    assert measured.count(REPLIES, platform="twitch", outcome="sent") == 2
    assert measured.count(REPLIES, platform="twitch", outcome="rate_limited") == 1


async def test_a_reply_over_the_limit_waits_for_room_in_the_window(  # type: ignore[no-untyped-def]
    redis: Redis, redis_server
) -> None:
    room = unique_room()
    limit = limiter(redis, redis_server.url, room, rate="2/1second", wait_s=10.0)
    taken: list[float] = []
    for _ in range(5):
        assert await limit.acquire("youtube")
        taken.append(time.monotonic())
    # never more than 2 within any 1-second window
    for earlier, later in zip(taken, taken[2:], strict=False):
        assert later - earlier >= 0.9, taken
    other = limiter(redis, redis_server.url, "other-" + uuid.uuid4().hex[:8], rate="2/1second")
    assert await other.acquire("youtube")  # each room (show) has its own window
