"""`duplicate`: the same text again from the same visitor within the window ("hello" and
"HELLO!!" are the same text: the normalized reading is compared).

The window reaches both ways from this message's `createdAt`, as in `flood`: of two copies judged
at once by two instances, the one judged second is the repeat, whichever was created first."""

from __future__ import annotations

from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings


class Duplicate(Check):
    name = "duplicate"

    def __init__(self, window_s: float = 30.0) -> None:
        self.window_ms = int(window_s * 1000)

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.duplicate_window_s)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        fingerprint = context.normalized.fingerprint
        for other in context.recent:
            if (
                other.message_id != message.id
                and abs(other.created_at - message.created_at) <= self.window_ms
                and other.fingerprint == fingerprint
            ):
                return self.reject("You just sent that; please don't repeat yourself.")
        return None
