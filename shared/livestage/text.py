"""Sanitizing user-supplied text (display names, chat bodies) before anything else sees it.

`clean_text` normalizes to NFKC, then:

- removes control, format (bidi overrides and isolates, zero-width characters, BOM), private-use,
  surrogate and unassigned characters, and the invisible marks in `INVISIBLE_MARKS`;
- turns every whitespace character and every *blank* character (`BLANK_CHARACTERS`: Hangul
  fillers, the blank Braille pattern, ...) into a space, so a name made of fillers is empty;
- keeps at most `MAX_MARKS_PER_BASE` combining marks (categories Mn and Me) after each base
  character and drops marks that have no base (at the start or after a space), so one letter
  with hundreds of stacked marks ("Zalgo" text) cannot smear over the page around it;
- collapses every run of spaces into one and trims the ends.

`shorten(text, max_chars)` cuts a cleaned text at a word boundary, marked with an ellipsis.

What comes out contains only visible characters and single spaces, so it cannot reorder the
text around it or hide in a page. `clean_text` is idempotent. Length limits are checked on the
result, counted in code points, by the callers (the schemas and the edge).
"""

from __future__ import annotations

import unicodedata
from typing import Final

# Categories removed outright: controls (Cc), format characters (Cf: bidi controls, zero-width
# joiners and spaces, BOM, soft hyphen), surrogates (Cs), private use (Co), unassigned (Cn).
_REMOVED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Whitespace that NFKC leaves alone but that should read as a plain space.
_SPACE_CATEGORIES: Final = frozenset({"Zs", "Zl", "Zp"})
# Combining marks that stack on the character before them (spacing marks, Mc, take room of
# their own and are treated like letters).
_MARK_CATEGORIES: Final = frozenset({"Mn", "Me"})

BLANK_CHARACTERS: Final = frozenset(
    {
        "\u115f",  # HANGUL CHOSEONG FILLER
        "\u1160",  # HANGUL JUNGSEONG FILLER (NFKC of U+3164 and U+FFA0)
        "\u3164",  # HANGUL FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "\u2800",  # BRAILLE PATTERN BLANK
        "\U0001d159",  # MUSICAL SYMBOL NULL NOTEHEAD
    }
)
"""Letters and symbols that draw nothing: they read as a space (and so as empty on their own)."""

INVISIBLE_MARKS: Final = frozenset(
    {
        "\u034f",  # COMBINING GRAPHEME JOINER
        "\u17b4",  # KHMER VOWEL INHERENT AQ (deprecated, invisible)
        "\u17b5",  # KHMER VOWEL INHERENT AA (deprecated, invisible)
    }
)
"""Combining marks that draw nothing and carry no meaning in chat: removed."""

MAX_MARKS_PER_BASE: Final = 4
"""Combining marks kept after one base character. Real text needs fewer after NFKC (Vietnamese
composes to precomposed letters; Hebrew points with cantillation, Indic vowel signs with
nukta and candrabindu, Thai vowel plus tone stay within 3-4)."""


def clean_text(value: str) -> str:
    """Return `value` normalized, with invisible characters removed and whitespace collapsed."""
    normalized = unicodedata.normalize("NFKC", value)
    kept: list[str] = []
    marks_on_base = 0
    for char in normalized:
        category = unicodedata.category(char)
        if char in "\t\n\r\v\f" or category in _SPACE_CATEGORIES or char in BLANK_CHARACTERS:
            kept.append(" ")
        elif category in _REMOVED_CATEGORIES or char in INVISIBLE_MARKS:
            continue
        elif category in _MARK_CATEGORIES:
            has_base = bool(kept) and kept[-1] != " "
            if has_base and marks_on_base < MAX_MARKS_PER_BASE:
                kept.append(char)
                marks_on_base += 1
            continue
        else:
            kept.append(char)
        marks_on_base = 0
    # NFKC of the filtered text can only merge characters (a mark into its base), never produce
    # removed ones or more marks, but it can turn compatibility spaces into " ": normalize
    # again before collapsing.
    collapsed = " ".join("".join(kept).split())
    return unicodedata.normalize("NFKC", collapsed)


def is_clean(value: str) -> bool:
    """True when `clean_text(value) == value`: no hidden characters, no stray whitespace."""
    return clean_text(value) == value


ELLIPSIS: Final = "..."
"""Three dots, not U+2026: chat text is NFKC-normalized, which turns one into the other."""


def shorten(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` at a word boundary, marked with an ellipsis."""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(ELLIPSIS)
    cut = text[:room]
    space = cut.rfind(" ")
    if space >= room // 2:  # cut at a word boundary unless that loses half the text
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ELLIPSIS
