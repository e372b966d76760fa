"""Moderation test fixtures: real moderators in-process on real NATS and Redis (helpers in
`helpers.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from nats.aio.msg import Msg
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus
from livestage.safety.openai import OpenAIModerator
from moderation.app import Moderator, build_pipeline
from moderation.checks.room_rate import RoomRate
from moderation.pipeline import Pipeline
from moderation.settings import ModerationSettings
from services.moderation.tests.helpers import Harness, Verdicts
from tests.support.bus import connected_bus
from tests.support.services import ServiceOutput


@pytest.fixture(scope="session")
def default_pipeline() -> Pipeline:
    """Every check with the default settings (loading the classifier takes a few seconds)."""
    return build_pipeline(ModerationSettings())


@pytest.fixture(scope="session")
async def bus(nats_server) -> AsyncIterator[Bus]:  # type: ignore[no-untyped-def]
    async with connected_bus(nats_server, "moderation-tests") as connected:
        yield connected


@pytest.fixture(scope="session")
async def replica_bus(nats_server) -> AsyncIterator[Bus]:  # type: ignore[no-untyped-def]
    """A second NATS connection, for a second moderator (a replica) of its own."""
    async with connected_bus(nats_server, "moderation-tests-replica") as connected:
        yield connected


@pytest.fixture(scope="session")
async def redis(redis_server) -> AsyncIterator[Redis]:  # type: ignore[no-untyped-def]
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


HarnessFactory = Callable[..., Any]


@pytest.fixture(scope="session")
async def start_harness(bus: Bus, redis: Redis, replica_bus: Bus) -> AsyncIterator[HarnessFactory]:
    """Start in-process moderators (stopped at the end of the session, before the buses close);
    `on=replica_bus` gives one its own NATS connection."""
    tasks: list[asyncio.Task[None]] = []
    closers: list[Any] = []
    stop = asyncio.Event()

    async def start(
        pipeline: Pipeline,
        openai: OpenAIModerator | None = None,
        *,
        room: str | None = None,
        instance: str = "test",
        on: Bus | None = None,
        **overrides: Any,
    ) -> Harness:
        """A moderator on a fresh room and durable, or on `room` sharing the durable of the
        moderators already there (a second instance); `on` is its own NATS connection (else the
        shared one); `overrides` are ModerationSettings fields."""
        room = room or "mod-" + uuid.uuid4().hex[:12]
        settings = ModerationSettings(durable="d-" + room, **overrides)
        moderator = Moderator(
            on or bus, redis, pipeline, settings, openai=openai, instance=instance
        )
        verdicts = Verdicts()
        for subject in (subjects.chat_approved(room), subjects.chat_rejected(room)):
            subscription = await bus.nc.subscribe(subject, cb=_async(verdicts.on_message))
            closers.append(subscription.unsubscribe)
        consumer = await moderator.consumer(subjects.chat_submitted(room))
        tasks.append(asyncio.create_task(moderator.run(consumer, stop)))
        if openai is not None:
            closers.append(openai.close)
        return Harness(room, bus, redis, moderator, verdicts)

    yield start
    stop.set()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)
    for close in closers:
        with contextlib.suppress(Exception):
            await close()


def _async(callback: Callable[[Msg], None]) -> Callable[[Msg], Any]:
    async def handler(msg: Msg) -> None:
        callback(msg)

    return handler


def without_room_cap(pipeline: Pipeline) -> Pipeline:
    """`pipeline` with the room cap raised out of reach: for tests whose rows share one room and
    arrive faster than a real room's cap (the cap has its own tests)."""
    return Pipeline(
        [RoomRate(1_000_000) if isinstance(check, RoomRate) else check for check in pipeline.checks]
    )


@pytest.fixture(scope="session")
async def harness(start_harness: HarnessFactory, default_pipeline: Pipeline) -> Harness:
    """One shared moderator with every check at its defaults (rows use their own authors), but
    the room cap: the rows are one room's burst."""
    started: Harness = await start_harness(without_room_cap(default_pipeline))
    return started


@pytest.fixture
def service_outputs() -> Iterator[list[ServiceOutput]]:
    """Processes registered here are killed at the end of the test, whatever happened."""
    outputs: list[ServiceOutput] = []
    yield outputs
    for output in outputs:
        if output.process.poll() is None:
            output.process.kill()
            output.process.wait(10)
