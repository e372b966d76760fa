"""`room_rate`: the room's approved chat is capped at N messages per second
(`MODERATION_ROOM_RATE`), across every moderation instance.

A flood spread over many visitors and networks passes every per-visitor and per-network limit;
this caps what the room sees. The window is the second of the message's own `createdAt` (when the
edge took it), like every other window here, so a backlog after a restart is judged as it was
typed. A fixed window: at a second's boundary the room may see up to 2N in a moment, never more
than N within one second of `createdAt`.

Only a message every other check approved asks for a place: the wiring (`state.py`) then hands out
places in that second atomically in Redis (a Lua script, so two instances never both give out the
last one; a redelivered message gets its own place back) and puts it in `Context.room_place`. This
check rejects a place past the cap, to the author only and without a strike (not their fault).
"""

from __future__ import annotations

from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings

BUSY_REASON = "Chat is busy right now, try again in a moment."
WINDOW_MS = 1000
"""The cap counts approved messages per second of `createdAt`."""


def room_window(created_at_ms: int) -> int:
    """The window (whole second since the epoch) a message's `createdAt` falls in."""
    return created_at_ms // WINDOW_MS


class RoomRate(Check):
    name = "room_rate"

    def __init__(self, max_per_second: int = 15) -> None:
        self.max_per_second = max_per_second

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.room_rate)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        place = context.room_place
        if place is None or place <= self.max_per_second:
            return None
        return self.reject(BUSY_REASON)
