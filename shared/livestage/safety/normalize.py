"""What a chat message really spells, before any word list looks at it.

`normalize(body)` undoes the usual ways of sneaking a word past a filter:

- Unicode look-alikes: compatibility forms (fullwidth, mathematical and circled letters) by
  NFKD, accents and stacked combining marks dropped, and letters from other scripts that look
  Latin (Cyrillic `а`, Greek `ο`, ...) folded with the confusables table of the maintained
  `confusable-homoglyphs` package (Unicode's confusables data); regional-indicator and squared
  letters too.
- leetspeak: `5h1t`, `@ss`, `$hit`, `sh!t`, `f*ck` (a `*` between letters stands for a vowel).
  Only inside words that have a letter or a leet symbol in them: `455` stays a number.
- punctuation inside a word (`f.u.c.k`, `f-u-c-k`) and words spelled out one letter at a time
  (`f u c k`, `f . u . c . k`): a run of three or more one-character words is joined.
- repeated letters: each run may stand for one letter or two (`fuuuuck` -> fuck,
  `asssshoooole` -> asshole).

The result keeps every spelling of every word (`Token.forms`), so a list can match any of them,
and a plain `text` for classifiers and duplicate detection. Pure and deterministic; bounded
work for any input (at most two `*` per word are expanded).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache

from confusable_homoglyphs import confusables

LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
"""Digits read as letters inside a word that has letters (`5h1t`); `1` is also tried as `l`."""
LEET_SYMBOLS = {"@": "a", "$": "s"}
"""Symbols read as letters anywhere in a word (`@ss`, `$hit`)."""
LEET_INTERIOR = {"!": "i", "|": "i", "+": "t", "€": "e"}
"""Symbols read as letters only between letters (`sh!t`), so `wow!` keeps its `!` as punctuation."""
VOWELS = "aeiou"
MAX_STARS = 2
"""A word with more `*` than this between letters is not expanded (bounded work)."""
MAX_RUN_CHOICES = 4
"""Words with more runs of a repeated letter than this are read in two ways only (bounded)."""
MAX_READINGS_FOR_RUNS = 10
MIN_SPELLED_RUN = 3
"""How many one-character words in a row are read as one spelled-out word."""

INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")
"""Characters that show nothing (Hangul fillers, the blank Braille pattern) but are letters or
symbols to Unicode, so text cleaning keeps them: a message of only these is empty."""

_RUN = re.compile(r"(.)\1+")
_COLLAPSE_TO_TWO = re.compile(r"(.)\1{2,}")
_COLLAPSE_TO_ONE = re.compile(r"(.)\1+")


@cache
def fold_table() -> dict[int, str]:
    """Code point -> the ASCII letter or digit it imitates (built once from the confusables)."""
    table: dict[int, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_glyphs = [
            glyph["c"]
            for glyph in glyphs
            if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isalnum()
        ]
        if not ascii_glyphs:
            continue
        # Prefer a lower-case letter, then an upper-case one, then a digit (leet reads it later).
        ascii_glyphs.sort(key=lambda c: (not c.islower(), not c.isupper(), c))
        table[ord(char)] = ascii_glyphs[0].lower()
    # Letters drawn as flags, in negative circles or squares: no compatibility decomposition.
    for base in (0x1F1E6, 0x1F150, 0x1F170):  # regional indicators, negative circled, squared
        for offset in range(26):
            table[base + offset] = chr(ord("a") + offset)
    return table


@cache
def capital_table() -> dict[int, str]:
    """Capital letter -> the ASCII letter (lower case) whose capital it imitates: `Ν` (Greek Nu)
    -> n, `Ѕ` -> s. Read before case folding, which would turn `Ν` into `ν` (drawn as v)."""
    table: dict[int, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii() or not char.isupper():
            continue
        capitals = sorted(
            glyph["c"]
            for glyph in glyphs
            if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isupper()
        )
        if capitals:
            table[ord(char)] = capitals[0].lower()
    return table


@dataclass(frozen=True)
class Token:
    """One word: `base` is its plain reading, `forms` every spelling a list may match."""

    base: str
    forms: frozenset[str]
    raw: str = ""  # the word's letters and digits as typed (no leet reading), for allowlists

    @property
    def spellings(self) -> frozenset[str]:
        """`forms` plus the raw spelling."""
        return self.forms | {self.raw} if self.raw else self.forms


@dataclass(frozen=True)
class Normalized:
    """A message body as the word checks see it."""

    folded: str
    """Case-folded, marks dropped, look-alikes folded; spacing and punctuation as typed."""
    tokens: tuple[Token, ...]
    """One per word with a letter or digit, in order."""
    joined: tuple[Token, ...] = field(default=())
    """`tokens` with spelled-out runs joined (`f u c k` -> `fuck`); same as tokens without runs."""

    @property
    def sequences(self) -> tuple[tuple[Token, ...], ...]:
        """The word sequences to match phrases against (plain, and with runs joined)."""
        if self.joined == self.tokens:
            return (self.tokens,)
        return (self.tokens, self.joined)

    @property
    def text(self) -> str:
        """Plain words, leet read, runs joined: what a classifier or a duplicate check reads."""
        return " ".join(token.base for token in self.joined)

    @property
    def visible(self) -> bool:
        """False when nothing would show: no letters, digits, punctuation or emoji at all."""
        return bool(self.folded.strip())

    @property
    def fingerprint(self) -> str:
        """What counts as 'the same message' (so `HELLO!!` repeats `hello`)."""
        return self.text or self.folded.strip()


def _without_marks(text: str) -> str:
    return "".join(
        char
        for char in unicodedata.normalize("NFKD", text)
        if char not in INVISIBLE and unicodedata.category(char) not in ("Mn", "Me")
    )


def fold(body: str) -> str:
    """NFKD, combining marks and invisible fillers dropped, case-folded, look-alikes folded."""
    # Capitals drawn as Latin capitals are folded before case folding, which would turn a
    # capital Greek Nu (`Ν`, drawn as N) into a small nu (`ν`, drawn as v). Case folding can
    # produce characters that decompose again (and look-alikes can be accented), so decompose
    # and drop marks on both sides of it.
    capitals = capital_table()
    return _without_marks(_without_marks(body).translate(capitals).casefold()).translate(
        fold_table()
    )


def _is_wordish(char: str) -> bool:
    return char.isalnum() or char in LEET_SYMBOLS


def _collapsed(spelling: str, *, every_combination: bool = True) -> set[str]:
    """`spelling` with its repeated letters read every plausible way.

    Each run of a repeated letter may stand for one letter or two (`fuuuck` -> fuck,
    `asssshoooole` -> asshole): with up to MAX_RUN_CHOICES runs every combination is tried,
    beyond that only "all runs to two" and "all runs to one".
    """
    runs = [match.span() for match in _RUN.finditer(spelling)]
    if not runs:
        return {spelling}
    forms = {
        spelling,
        _COLLAPSE_TO_TWO.sub(r"\1\1", spelling),
        _COLLAPSE_TO_ONE.sub(r"\1", spelling),
    }
    if every_combination and len(runs) <= MAX_RUN_CHOICES:
        for lengths in itertools.product((1, 2), repeat=len(runs)):
            pieces, position = [], 0
            for (start, end), length in zip(runs, lengths, strict=True):
                pieces.append(spelling[position:start] + spelling[start] * length)
                position = end
            pieces.append(spelling[position:])
            forms.add("".join(pieces))
    return forms


def _star_readings(spelling: str) -> list[str]:
    stars = spelling.count("*")
    if stars == 0:
        return [spelling]
    if stars > MAX_STARS:
        return [spelling.replace("*", "")]
    parts = spelling.split("*")
    readings = []
    for vowels in itertools.product(VOWELS, repeat=stars):
        reading = parts[0]
        for vowel, part in zip(vowels, parts[1:], strict=True):
            reading += vowel + part
        readings.append(reading)
    return readings


READ_WORDS_KEPT = 8192
"""Words whose reading is kept (`read_word` is pure, and chat repeats its words)."""


@lru_cache(maxsize=READ_WORDS_KEPT)
def read_word(word: str) -> Token | None:
    """The token of one whitespace-separated, already folded word; None if it has no letters.
    Kept for the most recent READ_WORDS_KEPT words (a Token is immutable)."""
    has_letter = any(char.isalpha() for char in word)
    leety = has_letter or any(char in LEET_SYMBOLS for char in word)
    wordish = [index for index, char in enumerate(word) if _is_wordish(char)]
    if not wordish:
        return None
    first, last = wordish[0], wordish[-1]
    letters: list[str] = []
    raw: list[str] = []
    had_one = False
    for index, char in enumerate(word):
        interior = first < index < last
        if char.isalnum():
            raw.append(char)
        if char.isalpha():
            letters.append(char)
        elif char.isdigit():
            if leety and char in LEET_DIGITS:
                letters.append(LEET_DIGITS[char])
                had_one = had_one or char == "1"
            else:
                letters.append(char)
        elif leety and char in LEET_SYMBOLS:
            letters.append(LEET_SYMBOLS[char])
        elif leety and interior and char in LEET_INTERIOR:
            letters.append(LEET_INTERIOR[char])
        elif interior and char == "*":
            letters.append("*")
    spelling = "".join(letters)
    base = spelling.replace("*", "")
    if not base:
        return None
    spellings = _star_readings(spelling)
    if had_one:
        # `1` read as `l` too: rebuild from the word with every leet `1` as `l`.
        alternative = read_word(word.replace("1", "l"))
        if alternative is not None:
            spellings += list(alternative.forms)
    forms: set[str] = set()
    for reading in spellings:
        # Many `*` readings already: do not multiply them by every run combination too.
        forms |= _collapsed(reading, every_combination=len(spellings) <= MAX_READINGS_FOR_RUNS)
    forms.add(base)
    return Token(base=base, forms=frozenset(forms), raw="".join(raw))


def _join_spelled_runs(words: list[str], tokens: list[Token]) -> tuple[Token, ...]:
    """Join runs of one-character tokens (`f u c k`) into one token read from their words."""
    joined: list[Token] = []
    index = 0
    while index < len(tokens):
        end = index
        while end < len(tokens) and len(tokens[end].base) == 1:
            end += 1
        if end - index >= MIN_SPELLED_RUN:
            token = read_word("".join(words[index:end]))
            if token is not None:
                joined.append(token)
            index = end
        else:
            joined.append(tokens[index])
            index += 1
    return tuple(joined)


def normalize(body: str) -> Normalized:
    """Read `body` as the word checks should (see the module docstring)."""
    folded = fold(body)
    words: list[str] = []
    tokens: list[Token] = []
    for word in folded.split():
        token = read_word(word)
        if token is not None:
            words.append(word)
            tokens.append(token)
    return Normalized(
        folded=folded,
        tokens=tuple(tokens),
        joined=_join_spelled_runs(words, tokens),
    )


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
