"""`room_rate`: the room's approved chat is capped at N messages per second
(`MODERATION_ROOM_RATE`), across every moderation instance; a show's own cap (`roomRate`, N per
minute, `moderation.shows`) replaces it for the show's room, through the same places.

A flood spread over many visitors and networks passes every per-visitor and per-network limit;
this caps what the room sees. The window is the second of the message's own `createdAt` (when the
edge took it), like every other window here, so a backlog after a restart is judged as it was
typed. A fixed window: at a second's boundary the room may see up to 2N in a moment, never more
than N within one second of `createdAt`.

Only a message every other check approved asks for a place: the wiring (`state.py`) then hands
out places in its window (`RoomCap`: the deployment's second or the show's minute) atomically in
Redis (a Lua script, so two instances never both give out the last one; a redelivered message
gets its own place back) and puts it in `Context.room_place` (with the show's limit in
`Context.room_limit`). This check rejects a place past the cap, to the author only and without a
strike (not their fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings

BUSY_REASON = "Chat is busy right now, try again in a moment."
WINDOW_MS = 1000
"""The cap counts approved messages per second of `createdAt`."""


MINUTE_MS = 60_000
"""A show's own cap (`ShowModerationConfig.room_rate`) counts per minute of `createdAt`."""


@dataclass(frozen=True)
class RoomCap:
    """At most `limit` approved messages in a room per `window_ms` of `createdAt` (fixed)."""

    limit: int
    window_ms: int = WINDOW_MS

    def window(self, created_at_ms: int) -> int:
        """The window (whole windows since the epoch) a message's `createdAt` falls in."""
        return created_at_ms // self.window_ms

    @classmethod
    def per_minute(cls, limit: int) -> RoomCap:
        return cls(limit, MINUTE_MS)


class RoomRate(Check):
    name = "room_rate"

    def __init__(self, max_per_second: int = 15) -> None:
        self.max_per_second = max_per_second
        self.cap = RoomCap(max_per_second)
        """The deployment's cap, for every room whose show sets none."""

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.room_rate)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        place = context.room_place
        limit = self.max_per_second if context.room_limit is None else context.room_limit
        if place is None or place <= limit:
            return None
        return self.reject(BUSY_REASON)
