"""`muted`: the visitor collected too many strikes recently and is muted for a while."""

from __future__ import annotations

import math

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict


class Muted(Check):
    name = "muted"

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        remaining_ms = context.muted_until_ms - message.created_at
        if remaining_ms <= 0:
            return None
        minutes = max(1, math.ceil(remaining_ms / 60_000))
        return self.reject(
            "You are muted for "
            f"{minutes} more minute{'' if minutes == 1 else 's'} after several messages "
            "that broke the chat rules."
        )
