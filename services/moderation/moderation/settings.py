"""Settings of the moderation service (`MODERATION_*`), beside the shared NATS, Redis and OpenAI.

Every window is counted on the messages' own `createdAt` (when the edge took them), not on when
moderation got to them, so a backlog after a restart is judged as it was typed, not as a flood.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from livestage.settings import SafetySettings, settings_config

DEFAULT_CHECKS = [
    "banned",
    "muted",
    "empty",
    "zalgo",
    "blocklist",
    "wordlist",
    "classifier",
    "links",
    "flood",
    "duplicate",
    "length",
    "caps",
    "repeat",
    "openai",
    "room_rate",
]
"""Every check, in the default order: the first one that rejects gives the viewer the reason.
`room_rate` comes last: only a message every other check approved takes a place in the room's
second."""


class ModerationSettings(SafetySettings):
    """Moderation: which checks run in which order, their thresholds, lists and windows."""

    model_config = settings_config("MODERATION_")

    checks: list[str] = Field(
        default=DEFAULT_CHECKS,
        description="Checks to run, in order (JSON list); the first that rejects gives the "
        "reason the viewer sees. Names: " + ", ".join(DEFAULT_CHECKS) + ".",
    )
    durable: str = Field(
        "moderation",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="JetStream durable consumer name; every instance with the same name shares "
        "the work.",
    )
    redeliver_after_s: list[float] = Field(
        default=[5.0, 10.0, 30.0, 60.0],
        min_length=1,
        description="Seconds before an unacknowledged message is redelivered, per attempt "
        "(JSON list; the first is the ack deadline of one message); the last step's successors "
        "climb to NATS_RETRY_MAX_BACKOFF_S until NATS_RETRY_BUDGET_S is covered.",
    )
    batch: int = Field(
        64,
        ge=1,
        le=1000,
        description="Messages fetched from JetStream and judged at once: their state is read "
        "and written in one Redis round trip each, their verdicts published together.",
    )
    duplicate_window_s: PositiveFloat = Field(
        30.0,
        description="The same text from one visitor within this many seconds is "
        "rejected as a repeat.",
    )
    flood_max_messages: int = Field(
        5, ge=1, description="Messages one visitor may send within the flood window."
    )
    flood_window_s: PositiveFloat = Field(10.0, description="The flood window (seconds).")
    caps_min_letters: int = Field(
        8, ge=1, description="Messages with fewer letters than this are never 'all caps'."
    )
    caps_ratio: float = Field(
        0.7, gt=0, le=1, description="Share of upper-case letters that makes a message 'all caps'."
    )
    max_char_run: int = Field(
        10, ge=2, description="Longest run of one repeated character a message may have."
    )
    max_chars: int = Field(300, ge=1, description="Longest message (characters).")
    max_word_chars: int = Field(
        40, ge=1, description="Longest word (characters); allowed links do not count."
    )
    link_allowed_hosts: list[str] = Field(
        default=["wikipedia.org"],
        description="Hosts links may point to (JSON list); subdomains included. Any other "
        "link is rejected.",
    )
    strikes_to_mute: int = Field(
        3, ge=1, description="Rejections (by a check that strikes) that mute a visitor."
    )
    strike_window_s: PositiveFloat = Field(
        600.0, description="Strikes older than this many seconds are forgotten."
    )
    mute_s: PositiveFloat = Field(300.0, description="How long a mute lasts (seconds).")
    decided_ttl_s: PositiveInt = Field(
        7 * 24 * 3600,
        description="How long the verdict of a message id is remembered in Redis, so a "
        "redelivery is never judged twice (seconds).",
    )
    openai_enabled: bool = Field(
        False,
        description="Also ask OpenAI's moderation endpoint (needs OPENAI_API_KEY; only for "
        "messages the offline checks approved).",
    )
    openai_fail_mode: Literal["open", "closed"] = Field(
        "open",
        description="When OpenAI fails or times out: `open` approves (the offline checks "
        "already passed it), `closed` rejects and asks the viewer to try again.",
    )

    room_rate: int = Field(
        15,
        ge=1,
        description="Approved chat messages per second in one room, counted in Redis across "
        "every instance (per second of the messages' createdAt); the rest are rejected with "
        "'Chat is busy right now, try again in a moment.' (to the author only, no strike).",
    )

    @field_validator("link_allowed_hosts")
    @classmethod
    def _hosts_are_lowercase(cls, value: list[str]) -> list[str]:
        return [host.strip().lower().rstrip(".") for host in value if host.strip()]

    @field_validator("redeliver_after_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(step <= 0 for step in value):
            raise ValueError("every redelivery delay must be more than 0 seconds")
        return value

    @property
    def state_window_s(self) -> float:
        """How far back a visitor's recent messages are kept (the longest spam window)."""
        return max(self.duplicate_window_s, self.flood_window_s)
