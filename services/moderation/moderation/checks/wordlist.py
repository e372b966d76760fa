"""`wordlist`: the word list maintained in `better-profanity` (about 900 words and phrases),
matched like our blocklist after our normalization (which reads leetspeak, look-alikes and
spelled-out words before the list sees them).

The list is broad ("god", "gay", "kill", "omg", "hell" are in it); the shipped allowlist takes
out everyday words and identity terms, which must never get someone rejected."""

from __future__ import annotations

from typing import Self

from livestage.safety.matching import AllowList, WordList
from livestage.safety.words import load_allowlist, load_wordlist
from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.checks.blocklist import LANGUAGE_REASON
from moderation.settings import ModerationSettings


class Wordlist(Check):
    name = "wordlist"

    def __init__(self, words: WordList, allow: AllowList | None = None) -> None:
        self.words = words
        self.allow = allow

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(load_wordlist(), load_allowlist(settings))

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if not self.words.matches(context.normalized, self.allow):
            return None
        return self.reject(LANGUAGE_REASON, strike=True)
