"""Settings of chat-bridge: which show, and each platform's chat (`BRIDGE_*`).

Nothing configured (no YouTube video or channel, no Twitch channel) is the default: the service
then idles and says so once. Credentials are `SecretStr` and never logged.
"""

from __future__ import annotations

from limits import parse
from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings

from livestage.settings import settings_config


class BridgeSettings(BaseSettings):
    """The bridge itself: the show the deployment's platform settings feed, and replies back to
    the platforms."""

    model_config = settings_config("BRIDGE_")

    room: str = Field(
        "",
        description="The show the BRIDGE_YOUTUBE_* and BRIDGE_TWITCH_CHANNEL settings feed "
        "(where its platformChat is null; other shows name their own); empty: LIVEKIT_ROOM.",
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
    channel_id: str = Field(
        "",
        description="Follow this channel's active live broadcast instead of one video (the "
        "`UC...` id; needs the channel's OAuth client and refresh token below).",
    )
    client_id: str = Field(
        "",
        description="OAuth client id (Google Cloud, type Desktop app) for replies and the "
        "channel's broadcast lookup.",
    )
    client_secret: SecretStr | None = Field(None, description="That OAuth client's secret.")
    refresh_token: SecretStr | None = Field(
        None,
        description="A refresh token of the channel's account for that client (scope "
        "youtube.force-ssl); access tokens are refreshed from it.",
    )
    token_url: str = Field(
        "https://oauth2.googleapis.com/token",
        description="The OAuth token endpoint (tests point it at a local double).",
    )
    daily_quota: PositiveInt = Field(
        10000,
        description="Quota units the bridge may use per Pacific-time day (chat page 5, reply "
        "50, lookup 1): a warning at 80%, a stop at 100% until the day turns.",
    )
    budget_hours: NonNegativeFloat = Field(
        4.0,
        description="Poll no faster than lets the remaining daily quota last this many hours "
        "(or until the quota day turns, if sooner); 0: YouTube's own pace only.",
    )
    backlog_s: NonNegativeFloat = Field(
        60.0,
        description="On the first start for a chat, hand over only the backlog messages "
        "younger than this (seconds); 0: none of them.",
    )
    find_interval_s: PositiveFloat = Field(
        60.0,
        description="While the broadcast is not live, look for its chat again this often "
        "(seconds; 1 quota unit each).",
    )
    retry_min_s: PositiveFloat = Field(
        1.0, description="First wait after a failed call (seconds; random exponential backoff)."
    )
    retry_max_s: PositiveFloat = Field(
        60.0, description="Longest wait between retries of a failed call (seconds)."
    )
    timeout_s: PositiveFloat = Field(10.0, description="Seconds one API call may take.")


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
