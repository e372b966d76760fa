"""Settings of chat-bridge: which show, and each platform's chat (`BRIDGE_*`).

Nothing configured (no YouTube video or channel, no Twitch channel) is the default: the service
then idles and says so once. Credentials are `SecretStr` and never logged.
"""

from __future__ import annotations

from limits import parse
from pydantic import Field, PositiveFloat, SecretStr, field_validator
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
    keep_s: int = Field(
        6 * 3600,
        ge=60,
        description="How long the bridge remembers a platform message for the platform's "
        "deletions and bans and for replies (seconds; like HISTORY_MAX_AGE_S).",
    )
    restart_min_s: PositiveFloat = Field(
        1.0,
        description="First wait before a platform client that failed is started again "
        "(seconds; doubled on each failure in a row, with jitter).",
    )
    restart_max_s: PositiveFloat = Field(
        60.0, description="Longest wait before a failed platform client is started again (s)."
    )
    reply_rate_twitch: str = Field(
        "20/30seconds",
        description="Replies the bot may post in Twitch chat (Twitch's limit for a bot that is "
        "not a moderator of the channel; `limits` notation, shared by every replica).",
    )
    reply_rate_youtube: str = Field(
        "10/minute",
        description="Replies the bot may post in YouTube chat (each costs 20 of the daily "
        "10,000 quota units; `limits` notation, shared by every replica).",
    )
    reply_max_wait_s: float = Field(
        10.0,
        ge=0,
        description="A reply over its platform's send limit waits this long for room, then is "
        "dropped (counted as rate_limited) (seconds).",
    )
    reply_timeout_s: PositiveFloat = Field(
        10.0, description="Timeout of one reply posted to a platform (seconds)."
    )

    @field_validator("reply_rate_twitch", "reply_rate_youtube")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        parse(value)  # ValueError naming the notation when it is not one
        return value


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
