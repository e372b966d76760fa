"""What a platform's chat client gives the bridge, and what the bridge gives it back.

A platform module (`youtube`, `twitch`) follows one platform's live chat for the show and hands
each item to a `Sink` as a `PlatformMessage`, raw as the platform sent it (the sink cleans text
and names, derives ids and publishes). The client owns its connection: it reconnects with
backoff and jitter, refreshes what can be refreshed, and reports trouble through the sink
(`connected`, `problem`), never by raising out of `run` for a platform outage.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from livestage.schemas import Platform, PlatformEvent, PlatformRole


@dataclass(frozen=True)
class PlatformMessage:
    """One chat item from a platform, as the platform sent it."""

    platform: Platform
    message_id: str
    """The platform's id of the message (what its deletions name)."""
    user_id: str
    """The platform's stable id of the author (YouTube channel id, Twitch user id)."""
    user_name: str
    """The author's display name, raw."""
    text: str
    """The message text, raw (may be empty for a membership or a Super Chat without a message)."""
    published_at_ms: int
    """When the platform says it was sent (epoch ms): the bridge's lag is measured from here."""
    roles: tuple[PlatformRole, ...] = ()
    event: PlatformEvent = "message"
    amount: str = ""
    """For a Super Chat, cheer, subscription: the amount as the platform displays it."""


@dataclass(frozen=True)
class ReplyTarget:
    """The platform message the host answered, for a reply back in the platform's chat."""

    platform: Platform
    message_id: str
    user_id: str
    user_name: str


class Sink(Protocol):
    """Where a platform client delivers (implemented by the bridge; every call may raise
    `livestage.bus.BusUnavailable`, which the client treats like any transient failure: it
    does not advance past that message, so nothing is skipped)."""

    async def submit(self, message: PlatformMessage) -> None:
        """Publish on `chat.submitted.<room>` (JetStream de-duplication id
        `<platform>:<message id>`: submitting the same message again is harmless)."""

    async def remove_message(self, platform: Platform, message_id: str) -> None:
        """The platform's moderators deleted this message: remove it from Livestage."""

    async def remove_user(self, platform: Platform, user_id: str) -> None:
        """The platform banned or timed out this user: remove their messages from Livestage."""

    def connected(self, platform: Platform, up: bool) -> None:
        """Whether the client currently follows the platform's chat (the `connected` gauge)."""

    def problem(self, platform: Platform, outcome: str, detail: str) -> None:
        """A failure worth telling the operator (`outcome`: unauthorized, quota, unavailable,
        not_live, ...): one log line per change of outcome, a metric every time."""


class PlatformChat(Protocol):
    """One platform's chat for the show."""

    platform: Platform

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Follow the chat until `stop` is set (reconnecting as needed); returns then."""

    def replies_off(self) -> str:
        """Why this client cannot post replies as configured ("" when it can): said once at
        start, and replies on this platform are then off."""

    async def reply(self, target: ReplyTarget, text: str) -> bool:
        """Post `text` in the platform's chat as an answer to `target`; False when the platform
        refused it (logged). `text` is the whole reply, already addressed to the author(s)
        ("@Marta ..."; `convert.reply_text`): a client adds no mention of its own. Only called
        when replies are on."""

    async def aclose(self) -> None:
        """Release connections."""
