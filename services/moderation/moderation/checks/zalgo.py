"""`zalgo`: letters buried under stacked combining marks (z̷̢̛a̸̡l̴g̷o̶ text) that spill over
the lines around them. Vietnamese needs two marks on a letter; the default limit is three."""

from __future__ import annotations

import unicodedata
from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings


def most_marks_on_one_char(text: str) -> int:
    """The largest number of combining marks following any one character."""
    most = run = 0
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.category(char) in ("Mn", "Me"):
            run += 1
            most = max(most, run)
        else:
            run = 0
    return most


class Zalgo(Check):
    name = "zalgo"

    def __init__(self, max_marks_per_char: int = 3) -> None:
        self.max_marks_per_char = max_marks_per_char

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.max_marks_per_char)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if most_marks_on_one_char(message.body) <= self.max_marks_per_char:
            return None
        return self.reject("Your message has too many stacked accent marks to read.")
