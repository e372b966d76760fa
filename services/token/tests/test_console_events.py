"""`GET /api/operator/events`: the console's stream carries what NATS says, with each chat
message's outcome, and a later connection's snapshot has it all, numbers included."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import (
    ChatMessage,
    ChatRemoval,
    HostJobEvent,
    ModerationVerdict,
    SpokenTurn,
    StageVisual,
    new_id,
    now_ms,
    removal_id,
)
from livestage.settings import NatsSettings
from livestage.shows import spend_cap_key, spend_day, spend_key
from tests.support.chat import chat_message
from tests.support.waiting import Changed, until

SECRET = "operator-secret-for-console-tests-01"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@dataclass
class EventStream:
    """What one open stream has received: (event name, data) in order."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    comments: int = 0
    changed: Changed = field(default_factory=Changed)

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def read(self, response: httpx.Response) -> None:
        event, data = "message", []
        async for line in response.aiter_lines():
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                self.events.append((event, json.loads("\n".join(data))))
                event, data = "message", []
                self.changed.notify()


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, show: str | None = None
) -> AsyncIterator[EventStream]:
    stream = EventStream()
    params = {"show": show} if show else None
    async with client.stream(
        "GET", "/api/operator/events", headers=AUTH, params=params
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(stream.read(response))
        try:
            await stream.changed.until(lambda: stream.named("snapshot"), 10, "the snapshot")
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def chat(room: str, n: int, created_at: int) -> ChatMessage:
    return chat_message(room, f"Question number {n}?", created_at=created_at)


async def test_the_stream_follows_chat_stage_and_host(make_edge, nats_server, redis_server) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, console_numbers_s=0.3)
    await edge.wait_for_bus()
    room = edge.room
    redis = Redis.from_url(redis_server.url)
    await redis.set(spend_key(room, spend_day(now_ms() / 1000)), "1.25")
    await redis.set(spend_cap_key(room), "5")
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "console-events-test")
    t0 = now_ms()
    approved, rejected, removed = (chat(room, n, t0 + n) for n in (1, 2, 3))

    async with open_stream(edge.client) as first:
        snapshot = first.named("snapshot")[0]
        assert snapshot["room"] == room
        assert snapshot["show"] == {"state": "live", "layout": "corner"}
        assert snapshot["chat"] == [] and snapshot["egress"] is None
        assert snapshot["host"]["state"] == "none"

        for message in (approved, rejected, removed):
            await bus.publish(subjects.chat_submitted(room), message)
        await bus.publish(subjects.chat_approved(room), approved)
        verdict = ModerationVerdict(
            message_id=rejected.id,
            room=room,
            author_identity=rejected.author_identity,
            verdict="rejected",
            reason="blocked words",
            checks=["wordlist", "classifier"],
            decided_at=now_ms(),
        )
        await bus.publish(subjects.chat_rejected(room), verdict)
        await bus.publish(subjects.chat_approved(room), removed)
        removal = ChatRemoval(
            id=removal_id(removed.id),
            room=room,
            message_id=removed.id,
            reason="off topic",
            created_at=now_ms(),
        )
        await bus.publish(subjects.chat_removed(room), removal)
        visual = StageVisual(
            id=new_id(),
            room=room,
            kind="backdrop",
            url="/media/aurora.png",
            title="The northern lights",
            created_at=now_ms(),
            expires_at=now_ms() + 3_600_000,
        )
        await bus.publish(subjects.stage_visual(room), visual)
        for event, extra in [
            ("started", {"voice": "openai-realtime", "avatar": "anam"}),
            ("live", {}),
            ("fallback", {"voice": "openai-realtime", "avatar": "local", "reason": "anam down"}),
        ]:
            job = HostJobEvent(
                id=new_id(), room=room, job_id="job-1", event=event, created_at=now_ms(), **extra
            )  # type: ignore[arg-type]
            await bus.publish(subjects.host_job(room), job)
        reply = SpokenTurn(
            id=new_id(),
            room=room,
            text="Good question.",
            reply_to=[approved.id],
            started_at=approved.created_at + 1500,
            ended_at=approved.created_at + 3000,
        )
        await bus.publish(subjects.host_spoken(room), reply)

        def outcomes() -> dict[str, list[str]]:
            seen: dict[str, list[str]] = {}
            for entry in first.named("chat"):
                seen.setdefault(entry["message"]["id"], []).append(entry["outcome"])
            return seen

        def all_heard() -> bool:
            seen = outcomes()
            return (
                seen.get(approved.id, [])[-1:] == ["approved"]
                and seen.get(rejected.id, [])[-1:] == ["rejected"]
                and seen.get(removed.id, [])[-1:] == ["removed"]
                and bool(first.named("visual"))
                and any(h["fallbacks"] for h in first.named("host"))
            )

        await first.changed.until(all_heard, 10, "the chat, visual and host events")
        seen = outcomes()
        # each message came as pending first (subjects are followed apart: a verdict may
        # overtake its submission, which then arrives with its outcome already)
        assert seen[approved.id][0] in ("pending", "approved")
        assert "removed" in seen[removed.id]
        rejected_entry = [e for e in first.named("chat") if e["outcome"] == "rejected"][0]
        assert rejected_entry["reason"] == "blocked words"
        assert rejected_entry["checks"] == ["wordlist", "classifier"]
        assert rejected_entry["message"]["body"] == "Question number 2?"
        assert first.named("visual")[0]["title"] == "The northern lights"
        host = first.named("host")[-1]
        assert host["state"] == "live" and host["jobId"] == "job-1"
        assert host["fallbacks"][0]["avatar"] == "local"
        assert host["fallbacks"][0]["reason"] == "anam down"

        numbers = await first.changed.until(
            lambda: [n for n in first.named("numbers") if n["reactions"] == 1],
            10,
            "a numbers event with the reply counted",
        )
        assert numbers[-1]["reactionP50Ms"] == 1500

    # a console opened later gets it all in its snapshot
    async with open_stream(edge.client) as later:
        snapshot = later.named("snapshot")[0]
        assert [(e["message"]["id"], e["outcome"]) for e in snapshot["chat"]] == [
            (approved.id, "approved"),
            (rejected.id, "rejected"),
            (removed.id, "removed"),
        ]
        assert snapshot["chat"][1]["checks"] == ["wordlist", "classifier"]
        assert [v["id"] for v in snapshot["visuals"]] == [visual.id]
        assert snapshot["host"]["state"] == "live"
        assert snapshot["host"]["avatar"] == "local"
        assert snapshot["numbers"] == {
            "viewers": 0,  # nobody joined the room
            "chatPerMinute": 0.3,  # 3 verdicts in the last 10 minutes
            "rejectedShare": 0.333,
            "spendTodayUsd": 1.25,
            "spendCapUsd": 5.0,
            "reactionP50Ms": 1500,
            "reactions": 1,
        }
    # a closed stream gives its place back once the edge hears the disconnect
    feed = edge.services.console.default
    await until(lambda: feed.open_streams == 0, 10, "the closed streams to be released")
    await bus.close()
    await redis.aclose()


async def test_the_stream_needs_the_operator_and_is_capped(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, console_streams=1)
    await edge.wait_for_bus()
    assert (await edge.client.get("/api/operator/events")).status_code == 401
    async with open_stream(edge.client):
        second = await edge.client.get("/api/operator/events", headers=AUTH)
        assert second.status_code == 503
        assert second.headers["retry-after"]
    feed = edge.services.console.default
    await until(lambda: feed.open_streams == 0, 10, "the closed stream to be released")
    async with open_stream(edge.client) as again:  # the place came back
        assert again.named("snapshot")


async def test_a_console_that_falls_behind_is_dropped(make_edge, nats_server) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, console_queue=2)
    await edge.wait_for_bus()
    # a stream nobody reads (opening it starts the show's feed, as a console's does)
    feed, stream = await edge.services.console.subscribe(edge.room)
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "console-drop-test")
    for n in range(3):
        await bus.publish(subjects.chat_submitted(edge.room), chat(edge.room, n, now_ms()))
    await until(lambda: stream.dropped, 10, "the slow stream to be dropped")
    assert feed.open_streams == 0
    feed.unsubscribe(stream)
    await bus.close()


async def create_show(edge: Any, room: str) -> None:
    created = await edge.client.post(
        "/api/operator/shows",
        json={"room": room, "title": f"Show {room}"},
        headers={**AUTH, "X-Livestage-Operator": "1"},
    )
    assert created.status_code == 201, created.text


async def test_each_show_has_its_own_stream(make_edge, nats_server) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    quiz = "quiz-" + new_id()[:8].lower()
    await create_show(edge, quiz)
    missing = await edge.client.get("/api/operator/events", params={"show": "nope"}, headers=AUTH)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]

    bus = await Bus.connect(NatsSettings(url=nats_server.url), "console-shows-test")
    ours, theirs = chat(quiz, 1, now_ms()), chat(edge.room, 2, now_ms())
    async with open_stream(edge.client, quiz) as stream, open_stream(edge.client) as default:
        snapshot = stream.named("snapshot")[0]
        assert snapshot["room"] == quiz and snapshot["show"]["state"] == "live"
        assert default.named("snapshot")[0]["room"] == edge.room
        await bus.publish(subjects.chat_submitted(edge.room), theirs)
        await bus.publish(subjects.chat_submitted(quiz), ours)
        await stream.changed.until(lambda: stream.named("chat"), 10, "the show's chat")
        await default.changed.until(lambda: default.named("chat"), 10, "the default's chat")
        assert [e["message"]["id"] for e in stream.named("chat")] == [ours.id]
        assert [e["message"]["id"] for e in default.named("chat")] == [theirs.id]
        assert set(edge.services.console.rooms) == {edge.room, quiz}
    # the show's feed stays (idle) and a console opened later gets its past
    async with open_stream(edge.client, quiz) as later:
        chat_ids = [e["message"]["id"] for e in later.named("snapshot")[0]["chat"]]
        assert chat_ids == [ours.id]
    await bus.close()


async def test_at_most_console_rooms_feeds_the_oldest_idle_closed_first(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, console_rooms=2)
    await edge.wait_for_bus()
    feeds = edge.services.console
    first, second = ("feeds-" + new_id()[:8].lower() for _ in range(2))
    for room in (first, second):
        await create_show(edge, room)
    async with open_stream(edge.client, first):
        assert set(feeds.rooms) == {edge.room, first}
    await until(lambda: feeds.open_streams == 0, 10, "the first show's stream released")
    async with open_stream(edge.client, second):
        # the first show's idle feed made room; the default show's is never closed
        assert set(feeds.rooms) == {edge.room, second}
        # every feed has a console open: a third show's is refused
        refused = await edge.client.get(
            "/api/operator/events", params={"show": first}, headers=AUTH
        )
        assert refused.status_code == 503 and "TOKEN_CONSOLE_ROOMS" in refused.json()["detail"]
        assert refused.headers["retry-after"]
        async with open_stream(edge.client) as default:  # the default show's is always there
            assert default.named("snapshot")[0]["room"] == edge.room


async def test_a_worker_follows_a_show_s_chat_only_once_a_console_opened_it(  # type: ignore[no-untyped-def]
    make_edge, nats_server
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    feed = edge.services.console.default
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "console-lazy-test")
    try:
        before = chat(edge.room, 0, now_ms())
        await bus.publish(subjects.chat_submitted(edge.room), before)
        assert not feed.started  # no console yet: the worker decodes none of the room's chat
        async with open_stream(edge.client) as stream:
            assert feed.started
            # what came before the first console is replayed (TOKEN_CONSOLE_BACKLOG_S)
            await stream.changed.until(
                lambda: before.id in stream_chat_ids(stream), 10, "the earlier line"
            )
    finally:
        await bus.close()


def stream_chat_ids(stream: EventStream) -> list[str]:
    """The ids of the chat lines a stream has: its snapshot's, then the live ones."""
    entries = [e for s in stream.named("snapshot") for e in s["chat"]] + stream.named("chat")
    return [e["message"]["id"] for e in entries]
