"""Word lists matched against a normalized message (`livestage.safety.normalize`).

A list has one entry a line; `#` starts a comment. An entry is a word or a phrase (words
separated by spaces); each word may start and/or end with `*`:

    badword       the whole word, in any spelling normalization finds (b4dw0rd, b a d w o r d)
    badword*      any word starting with it (badwords, badwordery)
    *badword      any word ending with it
    *badword*     any word containing it (only for words that never hide inside innocent ones)
    go away now   the words in a row
    suck my *     in a phrase, a lone `*` stands for any one word

Entries are read the way messages are (lower case, leet read, punctuation inside words dropped),
so `sh!t` and `s.h.i.t` in a list both mean `shit`.

Whole words, never substrings unless an entry says so, is what keeps "Scunthorpe", "assassin",
"cocktail", "class" and "grape" out of trouble. An allowlist names words that single-word entries
never match (false positives of a list, e.g. a town's name containing a bad word, or everyday
words a broad list includes); phrases still match through them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from livestage.safety.normalize import Normalized, Token, fold, read_word


class WordListError(ValueError):
    """A list file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class WordPattern:
    """One word of an entry: exact, or with a `*` at the start and/or end."""

    text: str
    prefix_wild: bool = False  # `*word`: anything may come before
    suffix_wild: bool = False  # `word*`: anything may come after

    def matches(self, token: Token) -> bool:
        if not (self.prefix_wild or self.suffix_wild):
            return self.text in token.forms
        for form in token.forms:
            if self.prefix_wild and self.suffix_wild:
                if self.text in form:
                    return True
            elif self.prefix_wild:
                if form.endswith(self.text):
                    return True
            elif self.suffix_wild:
                if form.startswith(self.text):
                    return True
            elif form == self.text:
                return True
        return False


def _pattern(word: str) -> WordPattern | None:
    if word == "*":
        return WordPattern("", prefix_wild=True, suffix_wild=True)  # any one word (in phrases)
    prefix_wild = word.startswith("*")
    suffix_wild = word.endswith("*") and len(word) > 1
    core = word.strip("*")
    token = read_word(fold(core)) if core else None
    if token is None:
        return None
    return WordPattern(token.base, prefix_wild, suffix_wild)


def read_entries(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, entry) for every non-blank line, comments stripped."""
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            yield number, entry


class WordList:
    """Entries of one list, indexed for matching many messages fast."""

    def __init__(self, entries: Iterable[str], *, source: str = "<list>") -> None:
        exact: set[str] = set()
        prefixes: set[str] = set()
        suffixes: set[str] = set()
        infixes: set[str] = set()
        phrases: list[tuple[WordPattern, ...]] = []
        for number, entry in read_entries(entries):
            patterns = [_pattern(word) for word in entry.split()]
            if any(pattern is None for pattern in patterns):
                raise WordListError(
                    f"{source}:{number}: entry {entry!r} has a word with no letters or digits"
                )
            words = tuple(pattern for pattern in patterns if pattern is not None)
            if len(words) > 1:
                phrases.append(words)
                continue
            (word,) = words
            if not word.text:
                raise WordListError(f"{source}:{number}: a lone '*' would match every word")
            if word.prefix_wild and word.suffix_wild:
                infixes.add(word.text)
            elif word.prefix_wild:
                suffixes.add(word.text)
            elif word.suffix_wild:
                prefixes.add(word.text)
            else:
                exact.add(word.text)
        self.source = source
        self.exact = frozenset(exact)
        self.prefixes = tuple(sorted(prefixes))
        self.suffixes = tuple(sorted(suffixes))
        self.infixes = tuple(sorted(infixes))
        self._infix = re.compile("|".join(map(re.escape, self.infixes))) if infixes else None
        self.phrases = tuple(phrases)
        # Phrases indexed by their first word when it is exact (nearly all are).
        self._phrases_by_first: dict[str, list[tuple[WordPattern, ...]]] = {}
        self._phrases_wild_first: list[tuple[WordPattern, ...]] = []
        for phrase in phrases:
            first = phrase[0]
            if first.prefix_wild or first.suffix_wild:
                self._phrases_wild_first.append(phrase)
            else:
                self._phrases_by_first.setdefault(first.text, []).append(phrase)

    @classmethod
    def from_file(cls, path: Path) -> WordList:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise WordListError(
                f"cannot read word list {path}: {error.strerror or error}"
            ) from error
        return cls(text.splitlines(), source=str(path))

    def __len__(self) -> int:
        return (
            len(self.exact)
            + len(self.prefixes)
            + len(self.suffixes)
            + len(self.infixes)
            + len(self.phrases)
        )

    def word_matches(self, token: Token) -> bool:
        """Does a single-word entry match this token in any of its spellings?"""
        forms = token.forms
        if not forms.isdisjoint(self.exact):
            return True
        for form in forms:
            if self.prefixes and form.startswith(self.prefixes):
                return True
            if self.suffixes and form.endswith(self.suffixes):
                return True
            if self._infix is not None and self._infix.search(form):
                return True
        return False

    def phrase_matches(self, sequence: Sequence[Token]) -> bool:
        for start, token in enumerate(sequence):
            candidates = list(self._phrases_wild_first)
            for form in token.forms:
                candidates.extend(self._phrases_by_first.get(form, ()))
            for phrase in candidates:
                if start + len(phrase) <= len(sequence) and all(
                    pattern.matches(sequence[start + offset])
                    for offset, pattern in enumerate(phrase)
                ):
                    return True
        return False

    def matches(self, normalized: Normalized, allow: AllowList | None = None) -> bool:
        """True when any entry matches the message (allowlisted words excepted)."""
        for sequence in normalized.sequences:
            for token in sequence:
                if allow is not None and allow.allows(token):
                    continue
                if self.word_matches(token):
                    return True
            if self.phrases and self.phrase_matches(sequence):
                return True
        return False


class AllowList:
    """Words that single-word entries never match, in any of their spellings."""

    def __init__(self, entries: Iterable[str], *, source: str = "<allowlist>") -> None:
        words: set[str] = set()
        for number, entry in read_entries(entries):
            if " " in entry or "*" in entry:
                raise WordListError(
                    f"{source}:{number}: allowlist entries are single words without '*', "
                    f"got {entry!r}"
                )
            token = read_word(fold(entry))
            if token is None:
                raise WordListError(f"{source}:{number}: entry {entry!r} has no letters")
            words.add(token.raw or token.base)
            words.add(token.base)
        self.source = source
        self.words = frozenset(words)

    @classmethod
    def from_file(cls, path: Path) -> AllowList:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise WordListError(
                f"cannot read allowlist {path}: {error.strerror or error}"
            ) from error
        return cls(text.splitlines(), source=str(path))

    def __len__(self) -> int:
        return len(self.words)

    def allows(self, token: Token) -> bool:
        return not token.spellings.isdisjoint(self.words)
