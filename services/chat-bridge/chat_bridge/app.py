"""Wiring of chat-bridge: each configured platform's chat in, `chat.submitted.<room>` out.

With no platform configured the service idles (connected to NATS, healthy) and says so once.
"""

from __future__ import annotations

import asyncio
import logging

from livestage import service

from .settings import BridgeSettings, TwitchSettings, YouTubeSettings
from .source import PlatformChat

log = logging.getLogger(__name__)

NAME = "chat-bridge"


def configured_platforms() -> list[PlatformChat]:
    """The platform clients the settings ask for (none by default)."""
    BridgeSettings()
    youtube, twitch = YouTubeSettings(), TwitchSettings()
    asked = (("youtube", youtube.video_id), ("twitch", twitch.channel))
    wanted = [name for name, on in asked if on]
    if wanted:
        raise NotImplementedError(f"platform chat not built yet: {', '.join(wanted)}")
    return []


async def main(stop: asyncio.Event) -> None:
    """`python -m chat_bridge`: follow the configured platforms' chat until SIGINT/SIGTERM."""
    platforms = configured_platforms()
    if not platforms:
        log.info(
            "%s: no platform configured (set BRIDGE_YOUTUBE_VIDEO_ID or BRIDGE_TWITCH_CHANNEL); "
            "idle",
            NAME,
        )
        await service.idle_on_bus(NAME, stop)
        return
