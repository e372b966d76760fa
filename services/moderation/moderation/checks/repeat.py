"""`repeat`: one character over and over ("!!!!!!!!!!!!", "soooooooooooo", "😂😂😂😂😂😂😂😂😂😂").

Combining marks (an emoji's variation selector) do not break a run, so "❤️❤️❤️..." counts."""

from __future__ import annotations

import unicodedata
from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings


def longest_run(text: str) -> int:
    """The longest run of one character, ignoring spaces and combining marks."""
    longest = run = 0
    previous = ""
    for char in text:
        if char == " " or unicodedata.category(char) in ("Mn", "Me"):
            continue
        run = run + 1 if char == previous else 1
        previous = char
        longest = max(longest, run)
    return longest


class Repeat(Check):
    name = "repeat"

    def __init__(self, max_run: int = 10) -> None:
        self.max_run = max_run

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.max_char_run)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if longest_run(message.body) <= self.max_run:
            return None
        return self.reject("Please don't repeat the same character over and over.")
