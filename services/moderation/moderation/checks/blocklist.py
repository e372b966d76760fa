"""`blocklist`: words and phrases from our own list file (`MODERATION_BLOCKLIST_PATH`, default
`moderation/lists/blocklist.txt`), matched in every spelling normalization finds, with the
allowlist (`MODERATION_ALLOWLIST_PATH`) for false positives. See `moderation.matching`."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.matching import AllowList, WordList
from moderation.settings import ModerationSettings

LISTS = Path(__file__).resolve().parent.parent / "lists"
DEFAULT_BLOCKLIST = LISTS / "blocklist.txt"
DEFAULT_ALLOWLIST = LISTS / "allowlist.txt"

LANGUAGE_REASON = "Your message contains language that isn't allowed here."


def load_allowlist(settings: ModerationSettings) -> AllowList:
    return AllowList.from_file(settings.allowlist_path or DEFAULT_ALLOWLIST)


class Blocklist(Check):
    name = "blocklist"

    def __init__(self, words: WordList, allow: AllowList | None = None) -> None:
        self.words = words
        self.allow = allow

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        words = WordList.from_file(settings.blocklist_path or DEFAULT_BLOCKLIST)
        return cls(words, load_allowlist(settings))

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if not self.words.matches(context.normalized, self.allow):
            return None
        return self.reject(LANGUAGE_REASON, strike=True)
