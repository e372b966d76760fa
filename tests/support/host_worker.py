"""A real host-agent worker (thread executor) in this process, against test servers.

    async with running_worker(livekit_server, nats_server, greet=True) as worker:
        await worker.dispatch(room)          # HOST_* settings as keywords, see worker_config

Waits are short by default (`HOST_VIEWER_WAIT_S` 3 s, `HOST_EMPTY_GRACE_S` 2 s) so the job-ending
rules can be seen within a test. Its metrics go to an in-memory reader (`metric_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from livekit import api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from pydantic import SecretStr

from host_agent.config import JobConfig
from host_agent.settings import HostSettings
from host_agent.worker import build_server
from livestage.settings import LiveKitSettings, NatsSettings, TopicSettings
from tests.support.livekit_helpers import server_api


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
    """Every data point of the metric `name` recorded so far by the test workers."""
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
        async with asyncio.timeout(30):
            await registered.wait()
        yield HostWorker(agent_name, config, livekit, nats.url)
    finally:
        await server.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
