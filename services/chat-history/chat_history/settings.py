"""Settings of chat-history (`HISTORY_*`), beside the shared LiveKit, NATS, Redis and topics."""

from __future__ import annotations

from pydantic import Field, PositiveFloat
from pydantic_settings import BaseSettings

from livestage.settings import settings_config


class HistorySettings(BaseSettings):
    """Chat history: how much is kept, how long, and how messages reach the room."""

    model_config = settings_config("HISTORY_")

    max_messages: int = Field(
        2000,
        ge=1,
        le=10_000,
        description="Messages kept per room; older ones are trimmed. A page that lost its "
        "connection catches up from here: at 50 msg/s the default covers 40 s away.",
    )
    max_age_s: int = Field(
        6 * 3600,
        ge=10,
        description="Messages older than this (by createdAt, seconds) are trimmed and never "
        "served or sent.",
    )
    send_timeout_s: float = Field(
        2.0, gt=0, le=30, description="Timeout of one LiveKit server-API call (seconds)."
    )
    batch: int = Field(
        64,
        ge=1,
        le=1000,
        description="Messages fetched from JetStream at once and handled concurrently.",
    )
    host_max_chars: int = Field(
        500,
        ge=20,
        le=500,
        description="A host turn longer than this is cut at a word boundary (with an "
        "ellipsis) for chat.",
    )
    pending_poll_s: PositiveFloat = Field(
        10.0, description="How often the consumers' lag is read for the metrics (seconds)."
    )
    reply_concurrency: int = Field(
        32,
        ge=1,
        le=1000,
        description="History requests answered at once per instance; one slow Redis read "
        "does not hold up the others.",
    )


class FanoutSettings(BaseSettings):
    """Chat fan-out: how chat-history packs a room's messages into LiveKit data packets."""

    model_config = settings_config("CHAT_")

    fanout_window_ms: int = Field(
        50,
        ge=0,
        le=1000,
        description="The gathering bound under load: a room sends at most CHAT_FANOUT_PACKETS "
        "data packets in any window of this many ms; one that reaches it sends one packet per "
        "window with what it got meanwhile (a `batch`, split to stay under LiveKit's packet "
        "size) until a packet carries fewer than CHAT_FANOUT_PACKETS events. Below the bound "
        "a room's message goes out at once, or with the others that came while its previous "
        "packet was in flight; 0: one packet per message.",
    )
    fanout_packets: int = Field(
        4,
        ge=1,
        le=1000,
        description="Packets a room may start within CHAT_FANOUT_WINDOW_MS before it gathers a "
        "window per packet (4 per 50 ms: a room at 50 msg/s sends each message alone and at "
        "once; one at 200 msg/s sends a packet of about 10 every 50 ms).",
    )
