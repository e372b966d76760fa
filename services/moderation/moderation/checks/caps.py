"""`caps`: MOSTLY CAPITAL LETTERS (short shouts like "LOL" or "GG" are fine)."""

from __future__ import annotations

from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings


class Caps(Check):
    name = "caps"

    def __init__(self, min_letters: int = 8, ratio: float = 0.7) -> None:
        self.min_letters = min_letters
        self.ratio = ratio

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.caps_min_letters, settings.caps_ratio)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        upper = lower = 0
        for char in message.body:
            if char.isupper():
                upper += 1
            elif char.islower():
                lower += 1
        cased = upper + lower
        if cased < self.min_letters or upper < self.ratio * cased:
            return None
        return self.reject("Please don't write in all caps.")
