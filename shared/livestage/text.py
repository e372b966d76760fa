"""Sanitizing user-supplied text (display names, chat bodies) before anything else sees it.

`clean_text` normalizes to NFKC, removes control, format (bidi overrides and isolates, zero-width
characters, BOM), private-use, surrogate and unassigned characters, and collapses every run of
whitespace into one space. What comes out contains only visible characters and single spaces, so
it cannot reorder the text around it or hide in a page. Length limits are checked on the result,
counted in code points, by the callers (the schemas and the edge).
"""

from __future__ import annotations

import unicodedata

# Categories removed outright: controls (Cc), format characters (Cf: bidi controls, zero-width
# joiners and spaces, BOM, soft hyphen), surrogates (Cs), private use (Co), unassigned (Cn).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Whitespace that NFKC leaves alone but that should read as a plain space.
_SPACE_CATEGORIES = frozenset({"Zs", "Zl", "Zp"})


def clean_text(value: str) -> str:
    """Return `value` normalized, with invisible characters removed and whitespace collapsed."""
    normalized = unicodedata.normalize("NFKC", value)
    kept: list[str] = []
    for char in normalized:
        if char in "\t\n\r\v\f" or unicodedata.category(char) in _SPACE_CATEGORIES:
            kept.append(" ")
        elif unicodedata.category(char) not in _REMOVED_CATEGORIES:
            kept.append(char)
    # NFKC of the filtered text can only merge characters, never produce removed ones, but
    # it can turn compatibility spaces into " ": normalize again before collapsing.
    collapsed = " ".join("".join(kept).split())
    return unicodedata.normalize("NFKC", collapsed)


def is_clean(value: str) -> bool:
    """True when `clean_text(value) == value`: no hidden characters, no stray whitespace."""
    return clean_text(value) == value
