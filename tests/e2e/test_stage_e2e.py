"""End to end with the host agent (local backends): the stage producer, as its own process,
learns that a room went live from the host's job events, captures a shipped page, stores it and
publishes the visual; the host relays it to a viewer on the stage topic, sends it to a viewer
who joins later, and its next idle monologue is about that visual's title."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from livekit import api

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import SpokenTurn, StageVisual
from livestage.settings import NatsSettings
from tests.support.host_worker import running_worker
from tests.support.livekit_helpers import server_api
from tests.support.room import RecordingViewer
from tests.support.services import start_stage_producer, stop_service, wait_http_ok
from tests.support.waiting import until

pytestmark = pytest.mark.browser


@pytest.fixture
async def host(livekit_server, nats_server) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A host worker's agent name: it waits 10 s for a viewer and talks after 4 s of quiet."""
    async with running_worker(
        livekit_server, nats_server, viewer_wait_s=10.0, idle_after_s=4.0
    ) as worker:
        yield worker.agent_name


async def test_a_visual_reaches_viewers_and_the_host_talks_about_it(  # type: ignore[no-untyped-def]
    host: str, livekit_server, nats_server, tmp_path: Path
) -> None:
    room = "stage-e2e-" + uuid.uuid4().hex[:8]
    stage, port = start_stage_producer(
        nats_server,
        tmp_path,
        STAGE_INTERVAL_S="600",  # one visual in this test
        STAGE_BACKDROP_EVERY="0",
        STAGE_CHECK_INTERVAL_S="0.5",
    )
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "stage-e2e")
    await bus.ensure_streams()
    spoken: list[SpokenTurn] = []
    published: list[StageVisual] = []

    async def on_spoken(observed: Observed[SpokenTurn]) -> None:
        spoken.append(observed.model)

    async def on_visual(observed: Observed[StageVisual]) -> None:
        published.append(observed.model)

    # From a time, not "new": an ordered consumer that misses heartbeats on a loaded machine is
    # recreated, and one recreated with "new" before its first message skips what came between.
    since = time.time() - 1
    watches = [
        await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken, start=since),
        await bus.watch(subjects.stage_visual(room), StageVisual, on_visual, start=since),
    ]
    viewers: list[RecordingViewer] = []
    try:
        # In a thread: a blocked event loop would starve the watches' NATS connection.
        await asyncio.to_thread(wait_http_ok, f"http://127.0.0.1:{port}/healthz", stage)
        async with server_api(livekit_server) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=host, room=room)
            )
        first = await RecordingViewer.join(livekit_server, room)
        viewers.append(first)

        relayed = (await first.wait_for(first.stage_packets, 60, "a stage visual"))[0]
        # The relay and this test's watch read the same stored message, each on its own time.
        visual = (await until(lambda: published, 15, "the visual on NATS (stage.visual)"))[0]
        assert relayed["id"] == visual.id and relayed["room"] == room
        assert relayed["title"] == "The northern lights" and relayed["kind"] == "screenshot"
        assert relayed["url"].startswith("/media/")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            asset = await http.get(relayed["url"])
        assert asset.status_code == 200 and asset.headers["content-type"] == "image/jpeg"

        late = await RecordingViewer.join(livekit_server, room)
        viewers.append(late)
        assert (await late.wait_for(late.stage_packets, 15, "a stage visual"))[0]["id"] == visual.id

        monologue = await until(
            lambda: next((turn for turn in spoken if turn.kind == "monologue"), None),
            45,
            "the host's idle monologue",
        )
        assert "the northern lights" in monologue.text.lower(), monologue.text
    finally:
        for viewer in viewers:
            await viewer.leave()
        for watch in watches:
            await watch.stop()
        await bus.close()
        output = stop_service(stage)
    assert stage.returncode == 0, output
