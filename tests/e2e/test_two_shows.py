"""Two shows at once on one deployment (issue #20's proof), every piece real: moderation,
chat-history and the stage producer as processes, a host-agent worker (local voice) and one edge
per show in process, rtc viewers with the edges' tokens.

Show A (persona Nova, topics Mars and Deep sea) and show B (persona Sage, topics Northern lights
and Synthesizers) are created as an operator creates them: the record in Redis (`ShowStore`),
then `ShowConfigEvent` on `room.config.<room>` (published before the stage producer starts, so it
learns them from the stream). Chat posted in one show reaches only that show's viewers and
history; each host greets as its own persona; each show's visuals are of its own topics only.
Ending B (the record, then `ShowEvent` ended) ends B's host job and stage while A stays live:
A's stage goes on and A's host still answers chat.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import (
    HostJobEvent,
    ShowConfig,
    ShowConfigEvent,
    ShowEvent,
    ShowStageConfig,
    SpokenTurn,
    StageVisual,
    new_id,
    now_ms,
)
from livestage.settings import NatsSettings, RedisSettings
from livestage.shows import ShowStore
from services.token.tests.conftest import Edge, EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.support.chat import ChatViewer, backend_env, chat_services
from tests.support.host_worker import HostWorker, running_worker
from tests.support.services import start_stage_producer, stop_service
from tests.support.waiting import until

pytestmark = pytest.mark.browser

TOPICS = {"a": {"Mars", "Deep sea"}, "b": {"Northern lights", "Synthesizers"}}
PERSONAS = {"a": ("nova", "Nova"), "b": ("sage", "Sage")}


class ShowRecord:
    """What one show's room published on NATS: host turns, host job events, visuals."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.spoken: list[SpokenTurn] = []
        self.jobs: list[HostJobEvent] = []
        self.visuals: list[tuple[float, StageVisual]] = []  # (arrived, time.time())

    async def follow(self, bus: Bus, since: float) -> list[Any]:
        async def on_spoken(observed: Observed[SpokenTurn]) -> None:
            self.spoken.append(observed.model)

        async def on_job(observed: Observed[HostJobEvent]) -> None:
            self.jobs.append(observed.model)

        async def on_visual(observed: Observed[StageVisual]) -> None:
            self.visuals.append((time.time(), observed.model))

        room = self.room
        return [
            await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken, start=since),
            await bus.watch(subjects.host_job(room), HostJobEvent, on_job, start=since),
            await bus.watch(subjects.stage_visual(room), StageVisual, on_visual, start=since),
        ]

    def ended(self) -> HostJobEvent | None:
        return next((job for job in self.jobs if job.event == "ended"), None)


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


@pytest.fixture
async def host(livekit_server, nats_server, redis_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    async with running_worker(
        livekit_server,
        nats_server,
        services={"redis": RedisSettings(url=redis_server.url)},
        greet=True,
        viewer_wait_s=30.0,
        empty_grace_s=30.0,
    ) as worker:
        yield worker


async def create_show(redis: Redis, bus: Bus, key: str, room: str) -> None:
    persona, _name = PERSONAS[key]
    config = ShowConfig(
        room=room,
        title=f"Show {key.upper()}",
        persona=persona,
        stage=ShowStageConfig(topics=sorted(TOPICS[key]), backdrops="procedural"),
        created_at=now_ms(),
        updated_at=now_ms(),
    )
    await ShowStore(redis).create(config)
    event = ShowConfigEvent(id=new_id(), room=room, config=config, created_at=now_ms())
    await bus.publish(subjects.room_config(room), event)


async def history_ids(edge: Edge, token: str) -> list[str]:
    response = await edge.client.get(
        "/api/chat/history", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return [message["id"] for message in response.json()["messages"]]


async def test_two_shows_never_cross_and_ending_one_leaves_the_other_live(  # type: ignore[no-untyped-def]
    make_edge: EdgeFactory,  # noqa: F811
    chat_path: dict[str, Any],
    host: HostWorker,
    livekit_server,
    nats_server,
    redis_server,
    tmp_path: Path,
) -> None:
    rooms = {key: f"show-{key}-{uuid.uuid4().hex[:8]}" for key in ("a", "b")}
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "two-shows")
    await bus.ensure_streams()
    redis = Redis.from_url(redis_server.url)
    records = {key: ShowRecord(room) for key, room in rooms.items()}
    since = time.time() - 1
    watches = [w for record in records.values() for w in await record.follow(bus, since)]
    for key, room in rooms.items():
        await create_show(redis, bus, key, room)
    stage, _port = start_stage_producer(
        nats_server,
        tmp_path,
        STAGE_INTERVAL_S="5",  # the minimum: a new visual every 5 s per show
        STAGE_BACKDROP_EVERY="1",  # backdrops only: no page capture, the topic still shows
        STAGE_BACKDROP_WIDTH="320",
        STAGE_BACKDROP_HEIGHT="180",
        STAGE_CHECK_INTERVAL_S="0.5",
        STAGE_MIN_GAP_S="0",
    )
    try:
        edges = {
            key: await make_edge(room=room, agent_name=host.agent_name)
            for key, room in rooms.items()
        }
        for edge in edges.values():
            await edge.wait_for_bus()
        # a viewer token from each show's edge dispatches that show's host
        tokens = {key: (await edge.token("Ada"))["token"] for key, edge in edges.items()}
        async with (
            ChatViewer.joined(livekit_server, rooms["a"], token=tokens["a"]) as viewer_a,
            ChatViewer.joined(livekit_server, rooms["b"], token=tokens["b"]) as viewer_b,
        ):
            viewers = {"a": viewer_a, "b": viewer_b}
            # each host greets as its show's persona
            for key, record in records.items():
                greeting = await until(lambda r=record: r.spoken, 60, f"show {key}'s greeting")
                assert greeting[0].speaker_name == PERSONAS[key][1], greeting[0]

            # chat: each show's message reaches its own viewer and history, never the other's
            said = {key: await edges[key].chat(tokens[key], f"hello from {key}") for key in rooms}
            for key, viewer in viewers.items():
                await viewer.wait_for_message(said[key], within=20)
            for key, other in (("a", "b"), ("b", "a")):
                assert said[other] not in viewers[key].message_ids()
                history = await history_ids(edges[key], tokens[key])  # the host's lines too
                assert said[key] in history and said[other] not in history

            # visuals: two of each show's own topics (the first, and the next 5 s later)
            for key, record in records.items():
                await until(lambda r=record: len(r.visuals) >= 2, 60, f"show {key}'s visuals")
            for key, record in records.items():
                assert {v.topic for _, v in record.visuals} <= TOPICS[key], record.visuals
                assert all(v.room == rooms[key] for _, v in record.visuals)

            # ending B: its host job ends and its stage stops; A goes on
            await ShowStore(redis).end(rooms["b"])
            ended = ShowEvent(id=new_id(), room=rooms["b"], state="ended", created_at=now_ms())
            await bus.publish(subjects.room_show(rooms["b"]), ended)
            ended_at = time.time()
            b_job = await until(records["b"].ended, 20, "B's host job to end")
            assert b_job.reason == "operator"
            # two A visuals made after B ended (the stage has long heard of it by the second)
            fence = await until(
                lambda: [at for at, _ in records["a"].visuals if at > ended_at][1:],
                30,
                "A's stage to go on",
            )
            assert not [at for at, _ in records["b"].visuals if at > fence[0]]
            assert {v.topic for _, v in records["a"].visuals} <= TOPICS["a"]
            # A's host is still live and answers
            question = await edges["a"].chat(tokens["a"], "Nova, are you still there?")
            reply = await until(
                lambda: next((t for t in records["a"].spoken if question in t.reply_to), None),
                30,
                "A's host to answer",
            )
            assert reply.speaker_name == "Nova"
            assert records["a"].ended() is None
    finally:
        for watch in watches:
            await watch.stop()
        await bus.close()
        for room in rooms.values():
            await ShowStore(redis).delete(room)
        await redis.aclose()
        output = await asyncio.to_thread(stop_service, stage)
        print(f"----- stage producer output -----\n{output}")
