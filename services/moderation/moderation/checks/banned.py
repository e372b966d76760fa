"""`banned`: an operator banned the visitor behind this identity (`livestage.bans`)."""

from __future__ import annotations

import math

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict


class Banned(Check):
    name = "banned"

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        ban = context.ban
        if ban is None or not ban.active(message.created_at):
            return None
        if ban.expires_at == 0:
            return self.reject("You have been banned from this chat.")
        minutes = max(1, math.ceil((ban.expires_at - message.created_at) / 60_000))
        return self.reject(
            f"You have been banned from this chat for {minutes} more minute"
            f"{'' if minutes == 1 else 's'}."
        )
