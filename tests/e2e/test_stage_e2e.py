"""End to end with the host agent (local backends): the stage producer, as its own process,
learns that a room went live from the host's job events, captures a shipped page, stores it and
publishes the visual; the host relays it to a viewer on the stage topic, sends it to a viewer
who joins later, and its next idle monologue is about that visual's title."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api, rtc
from pydantic import SecretStr

from host_agent.job import JobConfig
from host_agent.settings import HostSettings
from host_agent.worker import build_server
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import SpokenTurn, StageVisual
from livestage.settings import LiveKitSettings, NatsSettings, TopicSettings
from tests.support.identities import viewer_identity
from tests.support.livekit_helpers import leave, mint_token, server_api
from tests.support.services import free_port, start_service, stop_service, wait_http_ok

pytestmark = pytest.mark.browser
STAGE_TOPIC = TopicSettings().stage_topic


class StageViewer:
    """A real rtc client with a viewer identity that keeps the stage packets it receives."""

    def __init__(self, livekit: Any, room: str) -> None:
        self.livekit = livekit
        self.room_name = room
        self.identity = viewer_identity()
        self.room = rtc.Room()
        self.visuals: list[dict[str, Any]] = []
        self.got = asyncio.Event()

    async def join(self) -> StageViewer:
        def on_data(packet: rtc.DataPacket) -> None:
            if packet.topic == STAGE_TOPIC:
                self.visuals.append(json.loads(packet.data))
                self.got.set()

        self.room.on("data_received", on_data)
        token = mint_token(
            self.livekit, self.identity, self.room_name, can_publish=False, can_publish_data=False
        )
        async with asyncio.timeout(15):
            await self.room.connect(self.livekit.url, token)
        return self

    async def first_visual(self, within: float) -> dict[str, Any]:
        async with asyncio.timeout(within):
            await self.got.wait()
        return self.visuals[0]


@pytest.fixture
async def host(livekit_server, nats_server) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    agent_name = "stage-e2e-" + uuid.uuid4().hex[:8]
    config = JobConfig(
        host=HostSettings(
            executor="thread",
            health_port=0,
            viewer_wait_s=10.0,
            empty_grace_s=2.0,
            greet=False,
            idle_after_s=4.0,
            batch_window_s=0.2,
            avatar="none",
            voice="local",
        ),  # fmt: skip
        livekit=LiveKitSettings(
            url=livekit_server.url,
            api_key=livekit_server.api_key,
            api_secret=SecretStr(livekit_server.api_secret),
            agent_name=agent_name,
        ),
        nats=NatsSettings(url=nats_server.url),
        topics=TopicSettings(),
    )
    server = build_server(config, devmode=True)
    registered = asyncio.Event()
    server.on("worker_registered", lambda *_: registered.set())
    task = asyncio.create_task(server.run(devmode=True))
    async with asyncio.timeout(30):
        await registered.wait()
    yield agent_name
    await server.aclose()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_visual_reaches_viewers_and_the_host_talks_about_it(  # type: ignore[no-untyped-def]
    host: str, livekit_server, nats_server, tmp_path: Path
) -> None:
    room = "stage-e2e-" + uuid.uuid4().hex[:8]
    port = free_port()
    stage = start_service(
        "stage_producer",
        {
            "NATS_URL": nats_server.url,
            "STAGE_HTTP_PORT": str(port),
            "STAGE_ASSET_DIR": str(tmp_path),
            "STAGE_INTERVAL_S": "600",  # one visual in this test
            "STAGE_BACKDROP_EVERY": "0",
            "STAGE_CHECK_INTERVAL_S": "0.5",
        },
    )
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "stage-e2e")
    await bus.ensure_streams()
    spoken: list[SpokenTurn] = []
    published: list[StageVisual] = []

    async def on_spoken(observed: Observed[SpokenTurn]) -> None:
        spoken.append(observed.model)

    async def on_visual(observed: Observed[StageVisual]) -> None:
        published.append(observed.model)

    watches = [
        await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken),
        await bus.watch(subjects.stage_visual(room), StageVisual, on_visual),
    ]
    viewers: list[StageViewer] = []
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", stage)
        async with server_api(livekit_server) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=host, room=room)
            )
        first = await StageViewer(livekit_server, room).join()
        viewers.append(first)

        relayed = await first.first_visual(within=60)
        assert published, "the stage producer published the visual on NATS"
        visual = published[0]
        assert relayed["id"] == visual.id and relayed["room"] == room
        assert relayed["title"] == "The northern lights" and relayed["kind"] == "screenshot"
        assert relayed["url"].startswith("/media/")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            asset = await http.get(relayed["url"])
        assert asset.status_code == 200 and asset.headers["content-type"] == "image/jpeg"

        late = await StageViewer(livekit_server, room).join()
        viewers.append(late)
        assert (await late.first_visual(within=15))["id"] == visual.id

        async with asyncio.timeout(45):
            while not any(turn.kind == "monologue" for turn in spoken):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        monologue = next(turn for turn in spoken if turn.kind == "monologue")
        assert "the northern lights" in monologue.text.lower(), monologue.text
    finally:
        for viewer in viewers:
            await leave(viewer.room)
        for watch in watches:
            await watch.stop()
        await bus.close()
        output = stop_service(stage)
    assert stage.returncode == 0, output
