"""The sink on real NATS (JetStream) and Redis: platform chat onto `chat.submitted.<room>`,
once; the platform's deletions and bans as removals; what cannot be shown skipped."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from chat_bridge.convert import chat_id
from chat_bridge.publish import BridgeSink
from chat_bridge.records import Records
from livestage import metrics, subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, ChatRemoval, removal_id

from .conftest import Metrics, arrivals, item, stored_on, unique_room


def sink_for(bus: Bus, redis: Redis, room: str, measured: Metrics) -> BridgeSink:
    return BridgeSink(bus, Records(redis, room, 3600), room, meter=measured.meter)


async def test_a_platform_message_is_published_once_with_its_source(
    bridge_bus: Bus, redis: Redis
) -> None:
    room, measured = unique_room(), Metrics()
    sink = sink_for(bridge_bus, redis, room, measured)
    subject = subjects.chat_submitted(room)
    seen = await arrivals(bridge_bus, subject, ChatMessage)
    message = item("youtube", "what game is this?", user_id="UCabc_123", roles=("member",))

    await sink.submit(message)
    await sink.submit(message)  # a reconnect or a replayed page hands it over again

    [chat] = await seen.at_least(1)
    assert chat.id == chat_id("youtube", message.message_id)
    assert (chat.author_identity, chat.author_name, chat.body) == (
        "youtube:UCabc_123",
        "Marta",
        "what game is this?",
    )
    assert chat.source is not None and chat.source.message_id == message.message_id
    assert chat.source.roles == ["member"]
    assert await stored_on(bridge_bus, "CHAT", subject) == 1
    name = metrics.BRIDGE_MESSAGES.name
    assert measured.count(name, platform="youtube", outcome="submitted") == 1
    assert measured.count(name, platform="youtube", outcome="duplicate") == 1
    [lag] = [p for p in measured.points(metrics.BRIDGE_LAG.name)]
    assert lag.attributes["platform"] == "youtube" and lag.count == 1 and lag.sum >= 250


async def test_jetstream_refuses_a_message_the_bridge_has_no_record_of_publishing(
    bridge_bus: Bus, redis: Redis
) -> None:
    """A crash after the publish and before the bridge noted it: the de-duplication id
    `<platform>:<message id>` still keeps it from being stored twice."""
    room, measured = unique_room(), Metrics()
    sink = sink_for(bridge_bus, redis, room, measured)
    message = item("twitch")
    await sink.submit(message)
    records = Records(redis, room, 3600)
    await redis.delete(records._published(chat_id("twitch", message.message_id)))

    await sink.submit(message)

    assert await stored_on(bridge_bus, "CHAT", subjects.chat_submitted(room)) == 1
    name = metrics.BRIDGE_MESSAGES.name
    assert measured.count(name, platform="twitch", outcome="duplicate") == 1


async def test_deletions_and_bans_become_removals(bridge_bus: Bus, redis: Redis) -> None:
    room, measured = unique_room(), Metrics()
    sink = sink_for(bridge_bus, redis, room, measured)
    removed = await arrivals(bridge_bus, subjects.chat_removed(room), ChatRemoval)
    spammer = [item("twitch", f"buy followers {n}", user_id="666") for n in range(2)]
    deleted, kept = item("twitch", "oops", user_id="7"), item("twitch", "hi", user_id="7")
    for message in (*spammer, deleted, kept):
        await sink.submit(message)

    await sink.remove_message("twitch", deleted.message_id)
    await sink.remove_user("twitch", "666")

    removals = await removed.at_least(3)
    wanted = {chat_id("twitch", m.message_id) for m in (deleted, *spammer)}
    assert {r.message_id for r in removals} == wanted
    for removal in removals:
        assert removal.id == removal_id(removal.message_id)  # the operator's removal id too
        assert removal.room == room and removal.reason == "removed by Twitch's moderators"
    assert chat_id("twitch", kept.message_id) not in {r.message_id for r in removals}
    name = metrics.BRIDGE_MESSAGES.name
    assert measured.count(name, platform="twitch", outcome="removed") == 3
    # their messages are forgotten: a second ban has nothing left to remove
    await sink.remove_user("twitch", "666")
    assert measured.count(name, platform="twitch", outcome="removed") == 3
    assert await stored_on(bridge_bus, "CHAT", subjects.chat_removed(room)) == 3


async def test_a_deletion_before_the_message_still_removes_it(
    bridge_bus: Bus, redis: Redis
) -> None:
    """The platform may report a deletion of a message the bridge never published (deleted
    while the bridge was away): the removal names it all the same, and chat-history keeps it
    out if it ever arrives."""
    room, measured = unique_room(), Metrics()
    sink = sink_for(bridge_bus, redis, room, measured)
    removed = await arrivals(bridge_bus, subjects.chat_removed(room), ChatRemoval)
    await sink.remove_message("youtube", "LCC.never-seen")
    [removal] = await removed.at_least(1)
    assert removal.message_id == chat_id("youtube", "LCC.never-seen")
    assert removal.reason == "removed by YouTube's moderators"


async def test_what_cannot_be_shown_is_counted_and_skipped(
    bridge_bus: Bus, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    room, measured = unique_room(), Metrics()
    sink = sink_for(bridge_bus, redis, room, measured)
    with caplog.at_level(logging.DEBUG, logger="chat_bridge.publish"):
        await sink.submit(item("twitch", "\u200b\u200b"))
        await sink.submit(item("twitch", "hello", user_id="not an id"))
    await sink.submit(item("twitch", "", event="cheer", amount="100 bits"))  # an event: shown

    assert measured.count(metrics.BRIDGE_MESSAGES.name, platform="twitch", outcome="invalid") == 2
    assert sum("skipping twitch item" in r.getMessage() for r in caplog.records) == 2
    assert await stored_on(bridge_bus, "CHAT", subjects.chat_submitted(room)) == 1


async def test_a_problem_is_logged_once_per_change_and_counted_every_time(
    bridge_bus: Bus, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    measured = Metrics()
    sink = sink_for(bridge_bus, redis, unique_room(), measured)
    with caplog.at_level(logging.INFO, logger="chat_bridge.publish"):
        for _ in range(3):
            sink.problem("youtube", "quota", "quotaExceeded")
        sink.problem("youtube", "unavailable", "503")
        sink.problem("twitch", "unauthorized", "401 invalid token")
        sink.connected("youtube", True)  # back: the same problem later is news again
        sink.problem("youtube", "quota", "quotaExceeded")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "YouTube chat: quota: quotaExceeded",
        "YouTube chat: unavailable: 503",
        "Twitch chat: unauthorized: 401 invalid token",
        "YouTube chat: quota: quotaExceeded",
    ]
    name = metrics.BRIDGE_PROBLEMS.name
    assert measured.count(name, platform="youtube", outcome="quota") == 4
    assert measured.count(name, platform="twitch", outcome="unauthorized") == 1


async def test_the_connected_gauge_follows_the_client(bridge_bus: Bus, redis: Redis) -> None:
    measured = Metrics()
    sink = sink_for(bridge_bus, redis, unique_room(), measured)
    sink.connected("twitch", True)
    assert measured.count(metrics.BRIDGE_CONNECTED.name, platform="twitch") == 1
    sink.connected("twitch", False)
    assert measured.count(metrics.BRIDGE_CONNECTED.name, platform="twitch") == 0
