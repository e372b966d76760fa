"""`length`: too long for a live chat overlay, or one word too long to wrap."""

from __future__ import annotations

from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.checks.links import BARE_HOST, SCHEME_URL, WWW_URL
from moderation.settings import ModerationSettings


def _is_link(word: str) -> bool:
    return any(pattern.fullmatch(word) for pattern in (SCHEME_URL, WWW_URL, BARE_HOST))


class Length(Check):
    name = "length"

    def __init__(self, max_chars: int = 300, max_word_chars: int = 40) -> None:
        self.max_chars = max_chars
        self.max_word_chars = max_word_chars

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.max_chars, settings.max_word_chars)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if len(message.body) > self.max_chars:
            return self.reject(
                f"Your message is too long; please keep it under {self.max_chars} characters."
            )
        # Links are judged by the links check; a long one is not a "word".
        if any(
            len(word) > self.max_word_chars and not _is_link(word)
            for word in message.body.split(" ")
        ):
            return self.reject(
                f"Your message has a word longer than {self.max_word_chars} characters."
            )
        return None
