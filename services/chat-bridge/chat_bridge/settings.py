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
    """Twitch chat through EventSub over WebSocket (`channel.chat.*`) and the Helix API."""

    model_config = settings_config("BRIDGE_TWITCH_")

    channel: str = Field(
        "",
        description="The Twitch channel (login name) whose chat the host hears; empty: Twitch "
        "chat is off.",
    )
    client_id: str = Field(
        "",
        description="The client id of your Twitch application (dev.twitch.tv/console/apps).",
    )
    client_secret: SecretStr | None = Field(
        None, description="The client secret of that application (needed to refresh tokens)."
    )
    access_token: SecretStr | None = Field(
        None,
        description="The bot account's user access token (scopes user:read:chat "
        "user:write:chat); once refreshed, the newer token kept in Redis is used instead.",
    )
    refresh_token: SecretStr | None = Field(
        None, description="The refresh token issued with that access token."
    )
    eventsub_url: str = Field(
        "wss://eventsub.wss.twitch.tv/ws",
        description="The EventSub WebSocket URL (tests point it at a local double).",
    )
    api_url: str = Field(
        "https://api.twitch.tv/helix",
        description="The Helix API base URL (tests point it at a local double).",
    )
    auth_url: str = Field(
        "https://id.twitch.tv/oauth2",
        description="The Twitch OAuth base URL: token validation and refresh (tests point it "
        "at a local double).",
    )
    reconnect_initial_s: float = Field(
        1.0,
        gt=0,
        description="Wait before reconnecting after a failure; it doubles (with jitter) on "
        "each further failure, up to BRIDGE_TWITCH_RECONNECT_MAX_S.",
    )
    reconnect_max_s: float = Field(
        60.0, gt=0, description="The longest wait between two reconnect attempts."
    )
    auth_retry_s: float = Field(
        300.0,
        gt=0,
        description="Wait before trying again after Twitch refused what is configured (a "
        "refresh that failed, a revoked authorization, a missing scope, an unknown channel).",
    )
    validate_every_s: float = Field(
        3600.0,
        gt=0,
        description="How often the token is validated while in use (Twitch asks for hourly); "
        "an expired one is refreshed then.",
    )
    submit_retry_s: float = Field(
        120.0,
        gt=0,
        description="How long a chat item the bus cannot take is retried before it is given "
        "up (logged as an error).",
    )
