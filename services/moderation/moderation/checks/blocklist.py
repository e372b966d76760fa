"""`blocklist`: words and phrases from our own list file (`MODERATION_BLOCKLIST_PATH`, default
`livestage/safety/lists/blocklist.txt`), matched in every spelling normalization finds, with the
allowlist (`MODERATION_ALLOWLIST_PATH`) for false positives. See `livestage.safety.matching`."""

from __future__ import annotations

from typing import Self

from livestage.safety.matching import AllowList, WordList
from livestage.safety.words import load_allowlist, load_blocklist
from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings

LANGUAGE_REASON = "Your message contains language that isn't allowed here."


class Blocklist(Check):
    name = "blocklist"

    def __init__(self, words: WordList, allow: AllowList | None = None) -> None:
        self.words = words
        self.allow = allow

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(load_blocklist(settings), load_allowlist(settings))

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if not self.words.matches(context.normalized, self.allow):
            return None
        return self.reject(LANGUAGE_REASON, strike=True)
