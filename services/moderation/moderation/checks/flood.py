"""`flood`: more than N messages from one visitor (all their tabs) within the window.

The visitor's other messages within the window on either side of this one's `createdAt` count
(any verdict): with several instances judging at once, a message created a moment later may have
been judged first. Counted that way, however the messages of a burst are shared out and ordered,
the first N judged pass and the rest are floods (`state.py` records each message before the next
of its visitor is judged)."""

from __future__ import annotations

from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings


class Flood(Check):
    name = "flood"

    def __init__(self, max_messages: int = 5, window_s: float = 10.0) -> None:
        self.max_messages = max_messages
        self.window_ms = int(window_s * 1000)

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.flood_max_messages, settings.flood_window_s)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        others = sum(
            1
            for recent in context.recent
            if recent.message_id != message.id
            and abs(recent.created_at - message.created_at) < self.window_ms
        )
        if others < self.max_messages:
            return None
        return self.reject("You're sending messages too fast; wait a few seconds.", strike=True)
