"""Content checks for any text the public will see or hear: chat (the moderation service's
content checks are these), display names (the edge), the host's own words (the host agent) and
the stage's pages and titles (the stage producer).

`TextSafety.check(text)` is pure and offline. It reads the text the way `normalize` does
(look-alike letters, leetspeak, spelled-out and stretched words folded) and runs, in order:

| check | rejects |
|---|---|
| zalgo | letters under more stacked combining marks than `MODERATION_MAX_MARKS_PER_CHAR` |
| blocklist | a word or phrase of our list (`MODERATION_BLOCKLIST_PATH`), allowlist applied |
| wordlist | a word or phrase of better-profanity's list, allowlist applied |
| classifier | alt-profanity-check's score at or above `MODERATION_CLASSIFIER_THRESHOLD` |

Whole words only (so "Scunthorpe", "assassin" and "cocktail" pass). The spam checks of chat
(flood, duplicates, caps, repeats, links, length) are not here: they are about a visitor's
behaviour, not about what a text says. OpenAI's moderation endpoint (`livestage.safety.openai`)
is the optional second opinion, asked by the caller when a key is set.

Build one `TextSafety` per process (`from_settings` loads the lists and the classifier, which
takes a moment); `check` is then fast (tens of microseconds for a sentence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from livestage.safety.classifier import Scorer, load_scorer
from livestage.safety.matching import AllowList, WordList
from livestage.safety.normalize import most_marks_on_one_char, normalize
from livestage.safety.words import load_allowlist, load_blocklist, load_wordlist
from livestage.settings import SafetySettings

REASONS = {
    "zalgo": "It has too many stacked accent marks to read.",
    "blocklist": "It contains language that isn't allowed here.",
    "wordlist": "It contains language that isn't allowed here.",
    "classifier": "It looks insulting or abusive.",
}
"""Why a text was refused, by check: a sentence about "it" that never repeats the text."""


@dataclass(frozen=True)
class TextVerdict:
    """A refusal: which check, and a sentence saying why (never the text itself)."""

    check: str
    reason: str


class TextChecker(Protocol):
    """What checks a text the way `TextSafety.check` does (`TextSafety`, or one built with
    fewer parts, e.g. only the word lists for a transcript that is still streaming)."""

    def check(self, text: str) -> TextVerdict | None: ...


class TextSafety:
    """The offline content checks over one text. Pure once built."""

    def __init__(
        self,
        *,
        blocklist: WordList,
        wordlist: WordList,
        allow: AllowList | None = None,
        score: Scorer | None = None,
        threshold: float = 0.98,
        max_marks_per_char: int = 3,
    ) -> None:
        self.blocklist = blocklist
        self.wordlist = wordlist
        self.allow = allow
        self.score = score
        self.threshold = threshold
        self.max_marks_per_char = max_marks_per_char

    @classmethod
    def from_settings(cls, settings: SafetySettings) -> TextSafety:
        """Load the lists and the classifier the settings name (once per process)."""
        return cls(
            blocklist=load_blocklist(settings),
            wordlist=load_wordlist(),
            allow=load_allowlist(settings),
            score=load_scorer(settings.classifier_cache_dir),
            threshold=settings.classifier_threshold,
            max_marks_per_char=settings.max_marks_per_char,
        )

    def words_only(self) -> TextSafety:
        """The same lists without the classifier: the checks that judge words, cheap enough
        for every delta of a streaming transcript."""
        return TextSafety(
            blocklist=self.blocklist,
            wordlist=self.wordlist,
            allow=self.allow,
            score=None,
            threshold=self.threshold,
            max_marks_per_char=self.max_marks_per_char,
        )

    def check(self, text: str) -> TextVerdict | None:
        """The first check that refuses `text`, or None when it may be shown or said."""
        if most_marks_on_one_char(text) > self.max_marks_per_char:
            return self._refuse("zalgo")
        normalized = normalize(text)
        if self.blocklist.matches(normalized, self.allow):
            return self._refuse("blocklist")
        if self.wordlist.matches(normalized, self.allow):
            return self._refuse("wordlist")
        if (
            self.score is not None
            and normalized.text
            and self.score([normalized.text])[0] >= self.threshold
        ):
            return self._refuse("classifier")
        return None

    @staticmethod
    def _refuse(check: str) -> TextVerdict:
        return TextVerdict(check, REASONS[check])


__all__ = ["REASONS", "SafetySettings", "TextChecker", "TextSafety", "TextVerdict"]
