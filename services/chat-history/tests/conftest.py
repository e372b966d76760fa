"""chat-history running in-process (its real `serve`) on the session's NATS, Redis and LiveKit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from chat_history.app import serve
from chat_history.settings import FanoutSettings, HistorySettings
from chat_history.store import HistoryStore, Limits
from livestage.bus import Bus
from livestage.kv import connect_redis
from livestage.settings import LiveKitSettings, NatsSettings, RedisSettings


@dataclass
class RunningHistory:
    bus: Bus  # the test's own connection, for publishing and requests
    redis: Redis
    store: HistoryStore
    settings: HistorySettings


HistoryFactory = Callable[..., Awaitable[RunningHistory]]


@pytest.fixture
async def start_history(nats_server, redis_server, livekit_server) -> AsyncIterator[HistoryFactory]:  # type: ignore[no-untyped-def]
    """Start chat-history instances (each a `serve` task with its own NATS connection)."""
    stops: list[tuple[asyncio.Event, asyncio.Task[None], Bus]] = []
    closers: list[Any] = []

    async def start(
        store: Callable[[Redis, Limits], HistoryStore] | None = None, **overrides: Any
    ) -> RunningHistory:
        """`store` makes the service's store (a subclass with a test hook); settings overrides
        (`fanout_window_ms` for the fan-out's)."""
        fanout = FanoutSettings(
            **{k: overrides.pop(k) for k in list(overrides) if k in FanoutSettings.model_fields}
        )
        settings = HistorySettings(**{"send_timeout_s": 2.0, **overrides})
        service_bus = await Bus.connect(NatsSettings(url=nats_server.url), "chat-history-test")
        await service_bus.ensure_streams()
        redis = connect_redis(RedisSettings(url=redis_server.url))
        livekit = LiveKitSettings(
            url=livekit_server.url,
            api_key=livekit_server.api_key,
            api_secret=SecretStr(livekit_server.api_secret),
        )
        stop = asyncio.Event()
        limits = Limits(settings.max_messages, settings.max_age_s)
        service_store = store(redis, limits) if store is not None else None
        task = asyncio.create_task(
            serve(
                service_bus,
                redis,
                stop,
                settings=settings,
                livekit=livekit,
                store=service_store,
                fanout=fanout,
            )
        )
        stops.append((stop, task, service_bus))
        test_bus = await Bus.connect(NatsSettings(url=nats_server.url), "chat-history-test-client")
        closers.extend([test_bus.close, redis.aclose])
        await asyncio.sleep(0)
        return RunningHistory(
            test_bus,
            redis,
            HistoryStore(redis, Limits(settings.max_messages, settings.max_age_s)),
            settings,
        )

    yield start
    for stop, task, service_bus in stops:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await service_bus.close()
    for close in closers:
        await close()
