"""Settings of chat-bridge: which show, and each platform's chat (`BRIDGE_*`).

Nothing configured (no YouTube video or channel, no Twitch channel) is the default: the service
then idles and says so once. Credentials are `SecretStr` and never logged.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from livestage.settings import settings_config


class BridgeSettings(BaseSettings):
    """The bridge itself: the room platform chat goes to, and replies back to the platforms."""

    model_config = settings_config("BRIDGE_")

    room: str = Field(
        "",
        description="The room (show) platform chat is published to; empty: LIVEKIT_ROOM.",
    )
    replies: bool = Field(
        False,
        description="Post a short text version of the host's answer to a platform viewer in "
        "that platform's chat (at most one per answered comment, within its send limits).",
    )


class YouTubeSettings(BaseSettings):
    """YouTube Live chat through the YouTube Data API v3."""

    model_config = settings_config("BRIDGE_YOUTUBE_")

    video_id: str = Field(
        "",
        description="The live broadcast's video id (the `v=` of its watch URL); empty with no "
        "channel id: YouTube chat is off.",
    )
    api_key: SecretStr | None = Field(
        None, description="A YouTube Data API v3 key (reading chat needs only this)."
    )
    base_url: str = Field(
        "https://www.googleapis.com/youtube/v3",
        description="The YouTube Data API base URL (tests point it at a local double).",
    )


class TwitchSettings(BaseSettings):
    """Twitch chat."""

    model_config = settings_config("BRIDGE_TWITCH_")

    channel: str = Field(
        "",
        description="The Twitch channel (login name) whose chat the host hears; empty: Twitch "
        "chat is off.",
    )
