"""`flood`: more than N messages from one visitor (all their tabs) within the window."""

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
        since = message.created_at - self.window_ms
        earlier = sum(
            1
            for recent in context.recent
            if recent.message_id != message.id and since < recent.created_at <= message.created_at
        )
        if earlier < self.max_messages:
            return None
        return self.reject("You're sending messages too fast; wait a few seconds.", strike=True)
