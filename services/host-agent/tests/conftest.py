"""A real host-agent worker (thread executor, in this process) against the session's real
livekit-server and nats-server, plus viewers that are real rtc clients.

One worker serves the whole module (`host_worker`); each test dispatches it to a fresh room.
Waits are short here (`HOST_VIEWER_WAIT_S` 3 s, `HOST_EMPTY_GRACE_S` 2 s) so the job-ending
rules can be seen within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from livekit import api, rtc
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from pydantic import SecretStr

from host_agent.job import STATE_ATTRIBUTE, JobConfig
from host_agent.settings import HostSettings
from host_agent.worker import build_server
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import (
    HostCommand,
    HostJobEvent,
    SpokenTurn,
    new_id,
    now_ms,
)
from livestage.settings import LiveKitSettings, NatsSettings, TopicSettings
from tests.support.browser import WEB_DIST
from tests.support.chat import chat_message as chat_message
from tests.support.livekit_helpers import server_api
from tests.support.room import RecordingViewer
from tests.support.services import ROOT, edge_env, free_port, stop_service, wait_http_ok
from tests.support.waiting import until as until


@dataclass
class HostWorker:
    agent_name: str
    config: JobConfig
    livekit: Any
    nats_url: str

    async def dispatch(self, room: str) -> None:
        async with server_api(self.livekit) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=self.agent_name, room=room)
            )


METRICS = InMemoryMetricReader()
"""The test workers' metrics (their own provider: the global one belongs to whoever set it)."""
METER = MeterProvider(metric_readers=[METRICS]).get_meter("livestage")


def metric_points(name: str) -> list[Any]:
    """Every data point of the metric `name` recorded so far by this module's workers."""
    data = METRICS.get_metrics_data()
    points: list[Any] = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points


def metric_total(name: str, **attributes: str) -> float:
    """Sum (counters) or count (histograms) of the points of `name` with these attributes."""
    total = 0.0
    for point in metric_points(name):
        if all(point.attributes.get(k) == v for k, v in attributes.items()):
            total += getattr(point, "value", None) or getattr(point, "count", 0)
    return total


def worker_config(
    livekit: Any,
    nats_url: str,
    agent_name: str,
    *,
    services: dict[str, Any] | None = None,
    **host: Any,
) -> JobConfig:
    """A test worker's config: `HOST_*` settings as keywords, other settings objects of
    `JobConfig` (openai, anam, pipeline, cost, redis, ...) in `services`."""
    settings = {
        "executor": "thread",
        "health_port": 0,
        "viewer_wait_s": 3.0,
        "empty_grace_s": 2.0,
        "greet": False,
        "idle_after_s": 600.0,
        "batch_window_s": 0.2,
        "avatar": "none",
        "voice": "local",
        **host,
    }
    return JobConfig(
        host=HostSettings(**settings),
        livekit=LiveKitSettings(
            url=livekit.url,
            api_key=livekit.api_key,
            api_secret=SecretStr(livekit.api_secret),
            agent_name=agent_name,
        ),
        nats=NatsSettings(url=nats_url),
        topics=TopicSettings(),
        meter=METER,
        **(services or {}),
    )


@contextlib.asynccontextmanager
async def running_worker(
    livekit: Any, nats: Any, *, services: dict[str, Any] | None = None, **host: Any
) -> AsyncIterator[HostWorker]:
    """A registered host worker (thread executor) with these `HOST_*` settings (and other
    settings objects in `services`, see `worker_config`), closed after."""
    agent_name = "host-test-" + uuid.uuid4().hex[:8]
    config = worker_config(livekit, nats.url, agent_name, services=services, **host)
    server = build_server(config, devmode=True)
    registered = asyncio.Event()
    server.on("worker_registered", lambda *_: registered.set())
    task = asyncio.create_task(server.run(devmode=True))
    try:
        async with asyncio.timeout(20):
            await registered.wait()
        yield HostWorker(agent_name, config, livekit, nats.url)
    finally:
        await server.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(scope="module")
async def host_worker(livekit_server, nats_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    async with running_worker(livekit_server, nats_server) as worker:
        yield worker


def unique_room() -> str:
    return "host-" + uuid.uuid4().hex[:10]


class Viewer(RecordingViewer):
    """A recording viewer (`tests/support/room.py`) that also knows the host agent's state."""

    def host(self) -> rtc.RemoteParticipant | None:
        for participant in self.room.remote_participants.values():
            # the host agent, not an avatar (also AGENT kind): the one that reports a state
            if (
                participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                and STATE_ATTRIBUTE in participant.attributes
            ):
                return participant
        return None

    def host_state(self) -> str:
        host = self.host()
        return host.attributes.get(STATE_ATTRIBUTE, "") if host else ""


@pytest.fixture
async def viewers(livekit_server) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    made: list[Viewer] = []

    async def make(room: str, identity: str | None = None) -> Viewer:
        viewer = await Viewer.join(livekit_server, room, identity)
        made.append(viewer)
        return viewer

    yield make
    for viewer in made:
        await viewer.leave()


class Recorder:
    """Collects what the host publishes on NATS for one room."""

    def __init__(self) -> None:
        self.spoken: list[SpokenTurn] = []
        self.jobs: list[HostJobEvent] = []
        self.changed = asyncio.Event()

    async def start(self, bus: Bus, room: str) -> Recorder:
        async def on_spoken(observed: Observed[SpokenTurn]) -> None:
            self.spoken.append(observed.model)
            self.changed.set()

        async def on_job(observed: Observed[HostJobEvent]) -> None:
            self.jobs.append(observed.model)
            self.changed.set()

        await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken, start=0.0)
        await bus.watch(subjects.host_job(room), HostJobEvent, on_job, start=0.0)
        return self

    def job_events(self) -> list[str]:
        return [event.event for event in self.jobs]

    def ended(self) -> HostJobEvent | None:
        return next((event for event in self.jobs if event.event == "ended"), None)


def command(room: str, action: str, text: str = "") -> HostCommand:
    return HostCommand(
        id=new_id(),
        room=room,
        action=action,  # type: ignore[arg-type]
        text=text,
        created_at=now_ms(),
    )


# ---- the built pages in Chromium, served by a real edge process ------------------------------


@contextlib.contextmanager
def edge_process(
    worker: HostWorker,
    nats: Any,
    redis: Any,
    livekit: Any,
    web_dist: Path = WEB_DIST,
    **extra_env: str,
) -> Iterator[str]:
    """A real edge process for a fresh room that dispatches `worker`: yields "url|room".
    `extra_env` adds edge settings (e.g. TOKEN_STAGE_MEDIA_URL)."""
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make bootstrap`"
    port = free_port()
    room = "page-" + uuid.uuid4().hex[:8]
    env = edge_env(
        port,
        nats,
        redis,
        livekit,
        LIVEKIT_ROOM=room,
        LIVEKIT_AGENT_NAME=worker.agent_name,
        TOKEN_WEB_DIST=str(web_dist),
        **extra_env,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "token_service"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", process, within=30)
        yield f"http://127.0.0.1:{port}|{room}"
    finally:
        stop_service(process)
