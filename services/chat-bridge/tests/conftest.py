"""chat-bridge tests: the bridge's own parts in-process on the session's real NATS and Redis,
with the helpers the tests share (platform items, a scripted platform client: the other side of
the `PlatformChat` interface, what arrives on the bus, metrics read in-process); the service
itself runs as a process in `test_app.py`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pytest
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from redis.asyncio import Redis

from chat_bridge.source import PlatformMessage, ReplyTarget, Sink
from livestage.bus import Bus, Observed
from livestage.schemas import Platform, WireModel, now_ms
from tests.support.bus import connected_bus
from tests.support.waiting import Changed

M = TypeVar("M", bound=WireModel)


def unique_room() -> str:
    return "bridge-" + uuid.uuid4().hex[:12]


def item(
    platform: Platform = "twitch", text: str = "hello from chat", **given: Any
) -> PlatformMessage:
    """A platform chat item with fresh ids (override any field)."""
    fields: dict[str, Any] = {
        "platform": platform,
        "message_id": uuid.uuid4().hex,
        "user_id": "u" + uuid.uuid4().hex[:10],
        "user_name": "Marta",
        "text": text,
        "published_at_ms": now_ms() - 250,
    }
    return PlatformMessage(**{**fields, **given})


class Metrics:
    """An in-memory meter and what was recorded on it."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter: Meter = MeterProvider(metric_readers=[self.reader]).get_meter(
            "chat-bridge-test"
        )

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def count(self, name: str, **attributes: str) -> float:
        return float(
            sum(
                point.value
                for point in self.points(name)
                if all(point.attributes.get(k) == v for k, v in attributes.items())
            )
        )


@dataclass
class Arrivals(Generic[M]):
    """Wire models arriving on a subject (a watch from a moment before the test's first publish)."""

    models: list[M] = field(default_factory=list)
    changed: Changed = field(default_factory=Changed)

    async def on(self, observed: Observed[M]) -> None:
        self.models.append(observed.model)
        self.changed.notify()

    async def at_least(self, count: int, within: float = 10.0) -> list[M]:
        await self.changed.until(lambda: len(self.models) >= count, within, f"{count} arrivals")
        return self.models


async def arrivals(bus: Bus, subject: str, model: type[M]) -> Arrivals[M]:
    found: Arrivals[M] = Arrivals()
    await bus.watch(subject, model, found.on, start=time.time() - 1)
    return found


async def stored_on(bus: Bus, stream: str, subject: str) -> int:
    """How many messages JetStream holds on `subject` (what was published, duplicates refused)."""
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


Script = Callable[[Sink, asyncio.Event, int], Awaitable[None]]


class ScriptedPlatform:
    """A `PlatformChat` whose `run` follows a script (given the sink, the stop and which run
    this is, from 1) and whose `reply` records what it was asked to post."""

    def __init__(self, platform: Platform, script: Script | None = None) -> None:
        self.platform = platform
        self.script = script
        self.runs = 0
        self.replies: list[tuple[ReplyTarget, str]] = []
        self.reply_gate: asyncio.Event | None = None  # set: replies wait until it is set
        self.closed = False
        self.changed = Changed()
        self.off_reason = ""  # what `replies_off` says

    def replies_off(self) -> str:
        return self.off_reason

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        self.runs += 1
        self.changed.notify()
        if self.script is not None:
            await self.script(sink, stop, self.runs)
        await stop.wait()

    async def reply(self, target: ReplyTarget, text: str) -> bool:
        self.replies.append((target, text))
        self.changed.notify()
        if self.reply_gate is not None:
            await self.reply_gate.wait()
        return True

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture(scope="session")
async def bridge_bus(nats_server) -> AsyncIterator[Bus]:  # type: ignore[no-untyped-def]
    async with connected_bus(nats_server, "chat-bridge-tests") as connected:
        yield connected


@pytest.fixture(scope="session")
async def redis(redis_server) -> AsyncIterator[Redis]:  # type: ignore[no-untyped-def]
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()
