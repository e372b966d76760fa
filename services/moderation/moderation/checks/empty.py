"""`empty`: nothing would show (only accents, blank fillers or invisible letters)."""

from __future__ import annotations

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict


class Empty(Check):
    name = "empty"

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if context.normalized.visible:
            return None
        return self.reject("Your message has no visible text.")
