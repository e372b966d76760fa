"""Wiring of chat-bridge: each show's platform chat in, `chat.submitted.<room>` out.

One process serves every show (`shows.ShowBridges`: a `serve` per show whose `platformChat`
names a YouTube video or Twitch channel, started, changed and stopped as the shows change; the
deployment's show, BRIDGE_ROOM else LIVEKIT_ROOM, with the deployment's BRIDGE_* settings).

Each platform module offers `from_settings(redis) -> PlatformChat | None` (None: that platform
is not configured); `FACTORIES` lists them. With no platform configured the service idles
(connected to NATS, healthy) and says so once. Otherwise every platform client runs on its own
(`PlatformChat.run(sink, stop)`): one that raises (or returns before the stop) is logged, counted
(`livestage.bridge.problems{outcome=crashed}`) and started again after a backoff with jitter
(BRIDGE_RESTART_MIN_S doubling to BRIDGE_RESTART_MAX_S); it never ends the service nor touches
the other platform. With BRIDGE_REPLIES=true the replies coordinator (`replies`) runs beside.

Ready (/readyz) when NATS is connected and Redis answers a PING (checked every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

from opentelemetry.metrics import Meter
from pydantic import Field
from pydantic_settings import BaseSettings
from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage import health, service
from livestage.bus import Bus
from livestage.kv import connect_redis
from livestage.schemas import PLATFORM_NAMES
from livestage.settings import LiveKitSettings, RedisSettings, default_of, settings_config
from livestage.shows import ShowStore
from livestage.subjects import check_room

from . import twitch, youtube
from .publish import BridgeSink
from .records import Records
from .replies import Replies, ReplyLimiter, redis_limits_storage
from .settings import BridgeSettings
from .shows import ShowBridges
from .source import PlatformChat

log = logging.getLogger(__name__)

NAME = "chat-bridge"
REDIS_CHECK_S = 5.0

PlatformFactory = Callable[[Redis], PlatformChat | None]
"""A platform module's `from_settings(redis)`: its client, or None when it is not configured."""

FACTORIES: tuple[PlatformFactory, ...] = (youtube.from_settings, twitch.from_settings)
"""Every platform the bridge knows (each module's `from_settings`)."""


class _ShowRoom(BaseSettings):
    """LIVEKIT_ROOM alone: the bridge holds no LiveKit credentials."""

    model_config = settings_config("LIVEKIT_")

    room: str = Field(default_of(LiveKitSettings, "room"))


def show_room(settings: BridgeSettings) -> str:
    """BRIDGE_ROOM, else LIVEKIT_ROOM (the room viewers join)."""
    return check_room(settings.room or _ShowRoom().room)


def configured_platforms(
    redis: Redis, factories: Sequence[PlatformFactory] = FACTORIES
) -> list[PlatformChat]:
    """The platform clients the settings ask for (none by default)."""
    return [chat for factory in factories if (chat := factory(redis)) is not None]


def restart_delay_s(failures: int, first_s: float, cap_s: float) -> float:
    """The wait before a failed client's next start: doubling from `first_s` up to `cap_s`,
    jittered over its upper half (replicas and platforms do not retry in step)."""
    ceiling = min(cap_s, first_s * 2 ** max(failures - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


async def supervise(
    platform: PlatformChat, sink: BridgeSink, stop: asyncio.Event, settings: BridgeSettings
) -> None:
    """Run `platform` until `stop`, starting it again after each failure (with backoff)."""
    name = PLATFORM_NAMES[platform.platform]
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            await platform.run(sink, stop)
            if stop.is_set():
                return
            detail = "its client returned before the stop"
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("%s chat client failed", name)
            detail = f"its client raised {error!r}"
        sink.connected(platform.platform, False)
        # a client that ran for a while before failing starts over from the first wait
        failures = 1 if time.monotonic() - started > settings.restart_max_s else failures + 1
        delay = restart_delay_s(failures, settings.restart_min_s, settings.restart_max_s)
        sink.problem(platform.platform, "crashed", f"{detail}; starting it again in {delay:.1f} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def watch_redis(redis: Redis, stop: asyncio.Event, every_s: float = REDIS_CHECK_S) -> None:
    """Keep the `redis` ready check current: a PING now and every `every_s`."""
    state = {"up": False}
    health.add_ready_check("redis", lambda: state["up"])
    while not stop.is_set():
        try:  # a PING may retry for seconds against a Redis that is gone: a stop cuts it short
            state["up"] = bool(await service.until_stopped(redis.ping(), stop))
        except (RedisError, OSError) as error:
            if state["up"]:
                log.warning("%s: Redis does not answer: %r", NAME, error)
            state["up"] = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def serve(
    bus: Bus,
    redis: Redis,
    room: str,
    platforms: Sequence[PlatformChat],
    stop: asyncio.Event,
    settings: BridgeSettings,
    *,
    redis_url: str = "",
    meter: Meter | None = None,
) -> None:
    """Follow every platform's chat (and reply, when on) until `stop` is set, then close them.

    `meter`: where the metrics go (tests read them); the global meter provider by default."""
    records = Records(redis, room, settings.keep_s)
    sink = BridgeSink(bus, records, room, meter=meter)
    tasks = [
        asyncio.create_task(supervise(p, sink, stop, settings), name=f"platform {p.platform}")
        for p in platforms
    ]
    if settings.replies:
        storage = redis_limits_storage(redis_url or RedisSettings().url, redis)
        can_reply = {}
        for platform in platforms:
            if why := platform.replies_off():
                log.warning("replies on %s are off: %s", PLATFORM_NAMES[platform.platform], why)
            else:
                can_reply[platform.platform] = platform
        replies = Replies(
            bus,
            records,
            room,
            can_reply,
            ReplyLimiter.from_settings(storage, room, settings),
            settings.reply_timeout_s,
            meter,
        )
        tasks.append(asyncio.create_task(replies.run(stop), name="replies"))
    log.info(
        "%s following %s chat into room %s (replies %s)",
        NAME,
        " and ".join(PLATFORM_NAMES[p.platform] for p in platforms),
        room,
        "on" if settings.replies else "off",
    )
    try:
        await stop.wait()
    finally:
        stop.set()
        _, late = await asyncio.wait(tasks, timeout=settings.reply_timeout_s + 2)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=2)
        for platform in platforms:
            try:
                await platform.aclose()
            except Exception:
                log.exception("closing the %s client failed", platform.platform)
        sink.close()


async def main(stop: asyncio.Event) -> None:
    """`python -m chat_bridge`: follow every show's platform chat until SIGINT/SIGTERM."""
    # httpx logs every request at INFO: a YouTube poll every few seconds would bury the
    # bridge's own lines (its trouble reports) under thousands a day
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = BridgeSettings()
    room = show_room(settings)
    redis_settings = RedisSettings()
    redis = connect_redis(redis_settings)
    # the deployment's own settings are checked at start (a half configuration stops it here)
    for platform in configured_platforms(redis):
        await platform.aclose()
    bus = await service.connect_bus(NAME, stop)
    if bus is None:
        await redis.aclose()
        return

    async def serve_room(
        show: str, platforms: Sequence[PlatformChat], ended: asyncio.Event
    ) -> None:
        await serve(bus, redis, show, platforms, ended, settings, redis_url=redis_settings.url)

    watcher = asyncio.create_task(watch_redis(redis, stop))
    store = ShowStore(redis, default_room=_ShowRoom().room)
    bridges = ShowBridges(bus, store, room, serve_room)
    try:
        await bridges.start()
        if not bridges.running:
            log.info(
                "%s: no platform configured (set BRIDGE_YOUTUBE_VIDEO_ID or "
                "BRIDGE_TWITCH_CHANNEL, or a show's platformChat); waiting for a show that "
                "names one",
                NAME,
            )
        await bridges.run(stop)
    finally:
        stop.set()
        await watcher
        await bus.close()
        await redis.aclose()
