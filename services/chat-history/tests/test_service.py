"""chat-history's real `serve` against real NATS JetStream, Redis and livekit-server, with real
rtc viewers on the chat topic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import nats
import pytest

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import (
    BanEvent,
    ChatMessage,
    ChatRemoval,
    HistoryReply,
    HistoryRequest,
    ModerationVerdict,
    SpokenTurn,
    new_id,
    now_ms,
)
from tests.support.chat import (
    ChatViewer,
    chat_message,
    platform_message,
    wait_for_participants,
)
from tests.support.identities import viewer_identity
from tests.support.livekit_helpers import LiveKitEndpoint

from .conftest import HistoryFactory, RunningHistory


def new_room() -> str:
    return "chat-" + uuid.uuid4().hex[:10]


async def history_of(bus: Bus, room: str, limit: int = 50) -> list[str]:
    reply = await bus.request(
        subjects.history_recent(room), HistoryRequest(room=room, limit=limit), HistoryReply
    )
    return [m.id for m in reply.messages]


@pytest.fixture
def room() -> str:
    return new_room()


@pytest.fixture
async def history(start_history: HistoryFactory) -> RunningHistory:
    """chat-history with its default settings."""
    return await start_history()


@asynccontextmanager
async def viewers(
    livekit_server: LiveKitEndpoint, room: str, count: int
) -> AsyncIterator[list[ChatViewer]]:
    """`count` subscribe-only viewers in `room`, joined one after the other."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(ChatViewer.joined(livekit_server, room))
            for _ in range(count)
        ]


async def send_marker(
    history: RunningHistory, room: str, viewer: ChatViewer, body: str = "marker"
) -> ChatMessage:
    """Approve one more message and wait until `viewer` has it: what came before is handled."""
    marker = chat_message(room, body)
    await history.bus.publish(subjects.chat_approved(room), marker)
    await viewer.wait_for_message(marker.id)
    return marker


async def test_approved_message_is_stored_once_and_reaches_every_viewer(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    async with viewers(livekit_server, room, 2) as (b, c):
        first = chat_message(room, "first", created_at=now_ms() - 10)
        second = chat_message(room, "second <b>not bold</b>")
        await history.bus.publish(subjects.chat_approved(room), second)
        await history.bus.publish(subjects.chat_approved(room), first)
        for viewer in (b, c):
            assert await viewer.wait_for_message(first.id) == first
            assert await viewer.wait_for_message(second.id) == second

        # The same message again under another JetStream id (as after a lost ack): stored once,
        # and not sent again because the first delivery recorded its send.
        await history.bus.publish(subjects.chat_approved(room), first, msg_id="again-" + first.id)
        marker = await send_marker(history, room, b)
        assert b.message_ids().count(first.id) == 1
        assert await history.store.ids(room) == [first.id, second.id, marker.id]
        assert await history_of(history.bus, room) == [first.id, second.id, marker.id]
        assert await history_of(history.bus, room, limit=2) == [second.id, marker.id]


async def test_a_platform_message_keeps_its_source_live_in_history_and_after_a_cursor(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    """A YouTube Super Chat and a Twitch line (chat-bridge's) reach viewers, the history reply
    and a catch-up (`after`) with `source` whole; a page line still has none."""
    async with ChatViewer.joined(livekit_server, room) as viewer:
        at = now_ms()
        page_line = chat_message(room, "from the page", created_at=at - 30)
        super_chat = platform_message(
            room,
            "Marta sent a Super Chat",
            platform="youtube",
            user_id="UCmarta_1",
            event="super_chat",
            amount="$5.00",
            roles=("member",),
            created_at=at - 20,
        )
        twitch = platform_message(
            room, "hello from twitch", roles=("moderator", "subscriber"), created_at=at - 10
        )
        # the page line is stored first (shown only once stored), so the catch-up after it
        # holds both platform lines whichever instance stores them
        await history.bus.publish(subjects.chat_approved(room), page_line)
        assert await viewer.wait_for_message(page_line.id) == page_line
        for message in (super_chat, twitch):
            await history.bus.publish(subjects.chat_approved(room), message)
        for message in (super_chat, twitch):
            assert await viewer.wait_for_message(message.id) == message

        reply = await history.bus.request(
            subjects.history_recent(room), HistoryRequest(room=room, limit=10), HistoryReply
        )
        assert reply.messages == [page_line, super_chat, twitch]
        assert "source" not in reply.messages[0].to_wire()
        assert reply.messages[1].to_wire()["source"] == {
            "platform": "youtube",
            "userId": "UCmarta_1",
            "messageId": super_chat.source.message_id,  # type: ignore[union-attr]
            "roles": ["member"],
            "event": "super_chat",
            "amount": "$5.00",
        }
        after = await history.bus.request(
            subjects.history_recent(room),
            HistoryRequest(room=room, limit=10, after=page_line.id),
            HistoryReply,
        )
        # in the order they were stored (instances store concurrently), sources whole
        assert {m.id: m for m in after.messages} == {super_chat.id: super_chat, twitch.id: twitch}


async def test_a_message_stored_by_a_delivery_that_died_before_its_send_is_still_sent(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    """The crash window between the Redis write and the LiveKit send, made deterministic."""
    async with ChatViewer.joined(livekit_server, room) as viewer:
        message = chat_message(room, "written, then the process died")
        await history.store.store(message)  # what the dead delivery got done
        await history.bus.publish(subjects.chat_approved(room), message)  # its redelivery
        await viewer.wait_for_message(message.id)
        assert await history.store.ids(room) == [message.id]


async def test_rejection_goes_to_the_author_only(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    async with viewers(livekit_server, room, 2) as (author, other):
        await wait_for_participants(other, {author.identity})
        verdict = ModerationVerdict(
            message_id=new_id(),
            room=room,
            author_identity=author.identity,
            verdict="rejected",
            reason="links are not allowed here",
            checks=["spam"],
            decided_at=now_ms(),
        )
        await history.bus.publish(subjects.chat_rejected(room), verdict)
        await author.wait_until(lambda: bool(author.rejections()))
        (rejection,) = author.rejections()
        assert (rejection.message_id, rejection.reason) == (verdict.message_id, verdict.reason)

        marker = await send_marker(history, room, other, "after the rejection")
        assert other.rejections() == []
        assert await history.store.ids(room) == [marker.id]


async def test_removal_deletes_from_history_and_tells_every_viewer(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    async with viewers(livekit_server, room, 2) as (b, c):
        keep, drop = chat_message(room, "keep"), chat_message(room, "drop")
        for message in (keep, drop):
            await history.bus.publish(subjects.chat_approved(room), message)
        await c.wait_for_message(drop.id)

        removal = ChatRemoval(
            id=new_id(), room=room, message_id=drop.id, reason="spam", created_at=now_ms()
        )
        await history.bus.publish(subjects.chat_removed(room), removal)
        for viewer in (b, c):
            await viewer.wait_until(lambda v=viewer: drop.id in v.removals())
        assert await history_of(history.bus, room) == [keep.id]

        # A removal that overtakes its message keeps the message out of history and off the air.
        early = chat_message(room, "removed before it was approved")
        await history.bus.publish(
            subjects.chat_removed(room),
            ChatRemoval(id=new_id(), room=room, message_id=early.id, created_at=now_ms()),
        )
        await b.wait_until(lambda: early.id in b.removals())
        await history.bus.publish(subjects.chat_approved(room), early)
        marker = await send_marker(history, room, b)
        assert early.id not in b.message_ids()
        assert await history_of(history.bus, room) == [keep.id, marker.id]


async def test_ban_removes_only_that_visitors_participants_and_keeps_history(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:16]
    async with (
        ChatViewer.joined(livekit_server, room, viewer_identity(tag)) as tab1,
        ChatViewer.joined(livekit_server, room, viewer_identity(tag)) as tab2,
        ChatViewer.joined(livekit_server, room) as bystander,
    ):
        await wait_for_participants(bystander, {tab1.identity, tab2.identity})
        theirs = chat_message(room, "said before the ban", author_identity=tab1.identity)
        await history.bus.publish(subjects.chat_approved(room), theirs)
        await bystander.wait_for_message(theirs.id)

        disconnected = [asyncio.Event(), asyncio.Event()]
        for tab, event in zip((tab1, tab2), disconnected, strict=True):
            tab.room.on("disconnected", lambda *_, e=event: e.set())
        ban = BanEvent(
            id=new_id(), room=room, visitor_tag=tag, identity=tab1.identity, created_at=now_ms()
        )
        await history.bus.publish(subjects.chat_banned(room), ban)
        async with asyncio.timeout(10):
            for event in disconnected:
                await event.wait()
        assert bystander.room.connection_state == 1  # rtc.ConnectionState.CONN_CONNECTED
        assert await history_of(history.bus, room) == [theirs.id]


async def test_host_turns_become_host_lines(
    start_history: HistoryFactory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    history = await start_history(host_max_chars=40)
    async with ChatViewer.joined(livekit_server, room) as viewer:
        started = now_ms() - 2000

        def turn(text: str, started_at: int, **fields: Any) -> SpokenTurn:
            """A turn the host has just finished saying in `room`."""
            return SpokenTurn(
                id=new_id(),
                room=room,
                text=text,
                started_at=started_at,
                ended_at=now_ms(),
                **fields,
            )

        said = turn(
            "Hello everyone, welcome to the show tonight, it is a good one",
            started,
            speaker_name="Cara",
            speaker_identity="agent-AJ_host",
        )
        cut = turn("So as I was", started + 1, interrupted=True, kind="monologue")
        silent = turn(" ", started)
        for spoken in (silent, said, cut):
            await history.bus.publish(subjects.host_spoken(room), spoken)
        line = await viewer.wait_for_message(said.id)
        assert (line.kind, line.author_name, line.author_identity) == (
            "host",
            "Cara",
            "agent-AJ_host",
        )
        assert line.body == "Hello everyone, welcome to the show..."
        assert line.created_at == started
        assert (await viewer.wait_for_message(cut.id)).body == "So as I was..."
        assert await history_of(history.bus, room) == [said.id, cut.id]


async def test_a_room_nobody_is_in_still_gets_history_and_the_message_is_acked(
    history: RunningHistory, room: str, nats_server
) -> None:  # type: ignore[no-untyped-def]
    # Nobody joined `room`, so no LiveKit room exists: LiveKit would hold a send for ~3 s, then 503
    # (a room sends one packet at a time: the first message alone, then the rest together, on a
    # loaded machine: two such waits)
    base = now_ms() - 100
    messages = [chat_message(room, f"into the void {n}", created_at=base + n) for n in range(5)]
    for message in messages:
        await history.bus.publish(subjects.chat_approved(room), message)
    async with asyncio.timeout(15):
        while len(await history.store.ids(room)) < len(messages):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            while (await js.consumer_info("CHAT", "chat-history-approved")).num_ack_pending:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            await nc.close()
    assert await history_of(history.bus, room) == [m.id for m in messages]


async def test_two_instances_share_the_history_requests(
    start_history: HistoryFactory,
) -> None:
    first = await start_history()
    await start_history()
    room = new_room()
    message = chat_message(room)
    await first.bus.publish(subjects.chat_approved(room), message)
    async with asyncio.timeout(5):
        while not await first.store.ids(room):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    replies = await asyncio.gather(*(history_of(first.bus, room) for _ in range(20)))
    assert replies == [[message.id]] * 20


async def test_a_message_on_another_rooms_subject_is_dropped(
    history: RunningHistory, room: str, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    other = new_room()
    async with ChatViewer.joined(livekit_server, room) as viewer:
        stray = chat_message(other, "published on the wrong subject")
        await history.bus.publish(subjects.chat_approved(room), stray)
        marker = await send_marker(history, room, viewer)
        assert stray.id not in viewer.message_ids()
        assert await history.store.ids(room) == [marker.id]
        assert await history.store.ids(other) == []
