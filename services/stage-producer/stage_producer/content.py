"""What the stage shows and the host reads is checked: pure decisions over text, with the shared
content checker (`livestage.safety.TextSafety`: zalgo, blocklist, word list, classifier, after
folding leetspeak, look-alikes and spacing; the same offline checks as chat).

Checked before anything is published on `stage.visual.<room>`:

- a captured page: its title, description and text as read from the DOM (the host reads them),
  the start of all the text it renders (what the screen shows), and the search result's title
  and summary when it came from a search;
- every visual's title, summary and topic (a backdrop's title comes from a topic or a prompt);
- a topic picked from chat (a free word chat repeated, or the Gemini picker's answer), before it
  becomes a search query, a backdrop prompt or an on-screen title. Topics from the sources file
  are the operator's own and are not checked.

A failure names the field and the check, never the words (`Blocked.describe`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from livestage.safety import TextChecker


@dataclass(frozen=True)
class Blocked:
    """Which field failed which check, and the checker's reason (which never repeats the text)."""

    field: str
    check: str
    reason: str

    def describe(self) -> str:
        return f"its {self.field} failed the {self.check} check ({self.reason})"


def first_blocked(checker: TextChecker, fields: Iterable[tuple[str, str]]) -> Blocked | None:
    """The first (field name, text) pair that the checker refuses, or None when all pass."""
    for name, text in fields:
        if not text or not text.strip():
            continue
        verdict = checker.check(text)
        if verdict is not None:
            return Blocked(name, verdict.check, verdict.reason)
    return None
