"""Platform chat in cross-service tests: the Twitch and YouTube doubles set up as a live show's
chat, and chat-bridge as a real process (`python -m chat_bridge`) reaching them through its URL
settings.

    async with platform_doubles() as doubles:          # Twitch channel + a live YouTube video
        env = bridge_env(room, nats_server, redis_server, doubles, BRIDGE_REPLIES="true")
        async with running_bridge(env) as bridge:      # SIGTERM after, output printed
            await bridge.following(doubles)            # subscribed on Twitch, polling YouTube
            message_id = await doubles.twitch.chat(MARTA, "hello")
            await bridge.kill()                        # SIGKILL, as a crash
            await bridge.start()                       # the same settings again

Time settings are scaled down (retries and reconnects in tenths of a second) so trouble and
recovery are seen within a test; the YouTube double asks for a poll every 100 ms, and the daily
quota budget is raised to match. Each `platform_doubles` has its own API key and OAuth client,
so the quota and tokens the bridge keeps in the shared Redis belong to that test alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis

from livestage.shows import SHOWS_KEY, show_key
from tests.doubles.twitch import TwitchDouble
from tests.doubles.youtube import YouTubeDouble
from tests.support.services import ServiceOutput, end_service, free_port, start_service

YOUTUBE_CHANNEL = "UCbroadcaster00000000000"
BRIDGE_READY = {
    "twitch": "twitch: following #",
    "youtube": "YouTube: following live chat",
}
"""The line each platform's client logs once it follows the show's chat."""


@dataclass
class PlatformDoubles:
    """A Twitch channel and a live YouTube broadcast (`video_id`), ready for a bridge."""

    twitch: TwitchDouble
    youtube: YouTubeDouble
    video_id: str
    api_key: str
    oauth: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        """`BRIDGE_TWITCH_*` and `BRIDGE_YOUTUBE_*` for these doubles, times scaled down."""
        return {
            **self.twitch.env,
            "BRIDGE_TWITCH_RECONNECT_INITIAL_S": "0.05",
            "BRIDGE_TWITCH_RECONNECT_MAX_S": "0.5",
            "BRIDGE_TWITCH_AUTH_RETRY_S": "0.5",
            "BRIDGE_YOUTUBE_VIDEO_ID": self.video_id,
            "BRIDGE_YOUTUBE_API_KEY": self.api_key,
            "BRIDGE_YOUTUBE_BASE_URL": self.youtube.base_url,
            "BRIDGE_YOUTUBE_TOKEN_URL": self.youtube.token_url,
            "BRIDGE_YOUTUBE_CLIENT_ID": self.oauth["client_id"],
            "BRIDGE_YOUTUBE_CLIENT_SECRET": self.oauth["client_secret"],
            "BRIDGE_YOUTUBE_REFRESH_TOKEN": self.oauth["refresh_token"],
            "BRIDGE_YOUTUBE_RETRY_MIN_S": "0.05",
            "BRIDGE_YOUTUBE_RETRY_MAX_S": "0.5",
            "BRIDGE_YOUTUBE_FIND_INTERVAL_S": "0.2",
            "BRIDGE_YOUTUBE_BUDGET_HOURS": "0",
            "BRIDGE_YOUTUBE_DAILY_QUOTA": "1000000",
            "BRIDGE_YOUTUBE_TIMEOUT_S": "5",
        }


@contextlib.asynccontextmanager
async def platform_doubles(*, polling_interval_ms: int = 100) -> AsyncIterator[PlatformDoubles]:
    """Both doubles, the YouTube broadcast live, its channel's OAuth client accepted."""
    tag = uuid.uuid4().hex[:12]
    api_key = f"key-{tag}"
    oauth = {
        "client_id": f"client-{tag}",
        "client_secret": f"secret-{tag}",
        "refresh_token": f"refresh-{tag}",
    }
    async with (
        TwitchDouble() as twitch,
        YouTubeDouble(api_key=api_key, polling_interval_ms=polling_interval_ms) as youtube,
    ):
        video_id = f"v{tag[:10]}"
        youtube.go_live(video_id, channel_id=YOUTUBE_CHANNEL)
        youtube.add_oauth(channel_id=YOUTUBE_CHANNEL, **oauth)
        yield PlatformDoubles(twitch, youtube, video_id, api_key, oauth)


def without_stored_shows(redis_url: str) -> None:
    """Every show stored in Redis loses its configuration (`ShowStore` then knows only the
    deployment's show); state and layout stay."""
    client = redis.Redis.from_url(redis_url)
    try:
        for room in client.smembers(SHOWS_KEY):
            client.hdel(show_key(room.decode()), "config")
        client.delete(SHOWS_KEY)
    finally:
        client.close()


def bridge_env(
    room: str, nats: Any, redis: Any, doubles: PlatformDoubles, **extra: str
) -> dict[str, str]:
    """Environment of a chat-bridge process for `room` on the test servers, following both
    doubles (`extra` adds or overrides settings, e.g. BRIDGE_REPLIES="true"). The shows earlier
    tests stored in the session's Redis are forgotten first: a bridge follows every show it
    finds, and one naming a Twitch channel would share this bridge's bot and its token."""
    without_stored_shows(redis.url)
    return {
        "NATS_URL": nats.url,
        "REDIS_URL": redis.url,
        "LIVESTAGE_HEALTH_PORT": str(free_port()),
        "BRIDGE_ROOM": room,
        "BRIDGE_RESTART_MIN_S": "0.1",
        "BRIDGE_RESTART_MAX_S": "1",
        **doubles.env,
        **extra,
    }


@dataclass
class BridgeProcess:
    """chat-bridge as a process; `runs` keeps every start's output (a restart adds one)."""

    env: dict[str, str]
    runs: list[ServiceOutput] = field(default_factory=list)

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.runs[-1].process

    @property
    def output(self) -> ServiceOutput:
        """The current run's output."""
        return self.runs[-1]

    def text(self) -> str:
        """Everything every run printed, each run under a header."""
        return "".join(f"--- run {n} ---\n{run.text}" for n, run in enumerate(self.runs, 1))

    async def start(self) -> None:
        self.runs.append(ServiceOutput(start_service("chat_bridge", self.env)))

    async def wait_for_line(self, text: str, within: float = 30.0) -> str:
        """The current run's first line with `text` (AssertionError with its output if none)."""
        return await asyncio.to_thread(self.output.wait_for, text, within)

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.output.lines if text in line]

    async def following(self, doubles: PlatformDoubles, within: float = 60.0) -> None:
        """Until this run follows both chats: subscribed on Twitch (nothing said on Twitch
        before that reaches anyone, as on Twitch) and polling YouTube. The bound is generous:
        a service's start (its imports) has taken over 30 s on a loaded 2-core machine."""
        for line in BRIDGE_READY.values():
            await self.wait_for_line(line, within)
        await doubles.twitch.wait_until(doubles.twitch.subscribed_session, within)

    async def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to the platforms, nothing flushed."""
        self.process.kill()
        await asyncio.to_thread(self.process.wait, 15)
        await asyncio.to_thread(self.output.finish, 5)

    async def stop(self) -> str:
        """SIGTERM (if still running) and everything every run printed."""
        await asyncio.to_thread(end_service, self.process)
        await asyncio.to_thread(self.output.finish, 5)
        return self.text()


@contextlib.asynccontextmanager
async def running_bridge(env: dict[str, str]) -> AsyncIterator[BridgeProcess]:
    """A started chat-bridge process, stopped after the block (its output printed, for pytest
    to show when the test fails)."""
    bridge = BridgeProcess(env)
    await bridge.start()
    try:
        yield bridge
    finally:
        print(f"----- chat-bridge output -----\n{await bridge.stop()}")
