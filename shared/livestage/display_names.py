"""Display names a viewer may not take: the host's persona names and the show's staff words.

One list for every service: the edge refuses these names at token time (`TOKEN_RESERVED_NAMES`
defaults to `RESERVED_NAMES`), and a test keeps `HOST_PERSONA_NAMES` in step with the host
agent's persona files (`services/host-agent/host_agent/personas/*.yaml`), which the edge cannot
import. An operator with a persona of their own adds its name to `TOKEN_RESERVED_NAMES`.

`Impersonation.match(name)` is pure: it says which reserved name a display name is or contains
as a word, after the same folding the content checks use (`livestage.safety.normalize`:
look-alike letters, fullwidth and circled forms, accents, leetspeak, letters spelled out one at a
time, stretched letters). Before folding, a name is cut into words at spaces, punctuation,
lower-to-upper case changes and digits trailing a word, so "TheRealNova", "Nova_Official",
"Admin123", "h0st", "N o v a", "Ａｄｍｉｎ" and "ⓂⓄⒹ" all match, while a reserved word inside a
longer word does not: "Hostetler", "Hosting Hannah", "Modesto", "Systematic Sam", "Novak",
"Casanova" and "Sagebrush" are names, not impersonations. A reserved word standing alone as a
word still counts in any company ("Nova Scotia", "Sage Green", "Staff Sergeant"): on a public
stream a viewer who looks like the host or its staff is worse than a viewer asked to pick
another name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from livestage.safety.normalize import Token, normalize

HOST_PERSONA_NAMES: Final = ("Nova", "Sage")
"""The `name:` of every persona file the host agent ships."""
STAFF_WORDS: Final = (
    "host",
    "admin",
    "administrator",
    "moderator",
    "mod",
    "operator",
    "staff",
    "system",
    "official",
    "livestage",
)
"""Words that claim to speak for the show."""
RESERVED_NAMES: Final = HOST_PERSONA_NAMES + STAFF_WORDS

_SEPARATORS: Final = re.compile(r"[\s_\-.,:;/\\()\[\]{}<>\"'`~#=^%&?]+")
"""Characters that end a word in a name (leet symbols such as @ $ ! | + * stay inside words)."""
_TRAILING_DIGITS: Final = re.compile(r"(?<=[^\W\d_])(\d+)$")


def _camel_split(word: str) -> str:
    """A space before each upper-case letter that follows a lower-case one (any script)."""
    out: list[str] = []
    for index, char in enumerate(word):
        if index and char.isupper() and word[index - 1].islower():
            out.append(" ")
        out.append(char)
    return "".join(out)


def _readings(name: str) -> list[str]:
    """The name as typed ("Ad-min" is one word to the folding), then cut into words at
    punctuation, with and without cuts at case changes ("TheRealNova", but also "AdMiN"), and
    with and without the digits after a word's letters cut off ("Admin123", but also "Hos7",
    where the digit is a letter)."""
    parts = [part for part in _SEPARATORS.split(name) if part]
    readings: list[str] = [name]
    for words in (parts, [_camel_split(part) for part in parts]):
        plain = " ".join(words)
        cut = " ".join(_TRAILING_DIGITS.sub(r" \1", word) for word in plain.split())
        readings += [reading for reading in (plain, cut) if reading not in readings]
    return readings


def _phrase(reserved: str) -> tuple[str, ...]:
    """A reserved name as the words a folded name must show (empty for a name with no letters)."""
    words = " ".join(part for part in _SEPARATORS.split(reserved) if part)
    return tuple(token.base for token in normalize(words).joined)


def _contains(tokens: tuple[Token, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(
        all(word in token.forms for word, token in zip(phrase, tokens[start:], strict=False))
        for start in range(len(tokens) - size + 1)
    )


class Impersonation:
    """Which reserved name a display name impersonates, if any. Pure; build once, reuse."""

    def __init__(self, reserved: Iterable[str] = RESERVED_NAMES) -> None:
        phrases: dict[tuple[str, ...], str] = {}
        for name in reserved:
            phrase = _phrase(name)
            if phrase:
                phrases.setdefault(phrase, name)
                # "Captain Nova" is also taken as one word: "CaptainNova" splits, "captainnova"
                # does not.
                if len(phrase) > 1:
                    phrases.setdefault(("".join(phrase),), name)
        self._phrases = phrases

    def match(self, name: str) -> str | None:
        """The reserved name (as configured) that `name` is or contains as a word, else None."""
        for reading in _readings(name):
            for tokens in normalize(reading).sequences:
                for phrase, reserved in self._phrases.items():
                    if _contains(tokens, phrase):
                        return reserved
        return None
