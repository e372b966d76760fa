"""`wordlist`: the word list maintained in `better-profanity` (about 900 words and phrases),
matched like our blocklist after our normalization (which reads leetspeak, look-alikes and
spelled-out words before the list sees them).

The list is broad ("god", "gay", "kill", "omg", "hell" are in it); the shipped allowlist takes
out everyday words and identity terms, which must never get someone rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from better_profanity.utils import get_complete_path_of_file

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.checks.blocklist import LANGUAGE_REASON, load_allowlist
from moderation.matching import AllowList, WordList
from moderation.settings import ModerationSettings

BETTER_PROFANITY_LIST = Path(get_complete_path_of_file("profanity_wordlist.txt"))


class Wordlist(Check):
    name = "wordlist"

    def __init__(self, words: WordList, allow: AllowList | None = None) -> None:
        self.words = words
        self.allow = allow

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(WordList.from_file(BETTER_PROFANITY_LIST), load_allowlist(settings))

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if not self.words.matches(context.normalized, self.allow):
            return None
        return self.reject(LANGUAGE_REASON, strike=True)
