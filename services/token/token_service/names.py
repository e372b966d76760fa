"""Display names at token time: the chat's offline content checks, then impersonation.

`NameCheck.check(name)` is pure and returns a `NameProblem` (which check, and a reason for the
person that never repeats the name) or None:

- content: `livestage.safety.TextSafety`, the same offline checks chat messages get (blocklist,
  better-profanity's word list, the classifier, stacked marks), on the same folded readings
  (look-alikes, leetspeak, spacing; the allowlist keeps Scunthorpe-type names).
- impersonation: `livestage.display_names.Impersonation` over `TOKEN_RESERVED_NAMES` (the host's
  persona names and staff words such as host, admin, moderator, Livestage), as a word of the name
  in any of those spellings.

Offline only, on purpose: the edge is what the public talks to, so it holds the fewest secrets
(no OpenAI key), and a name costs no paid call and no wait on a remote API. The chat's OpenAI
moderation check stays in the moderation service, which already holds that key.

Loading the word lists and the classifier takes a moment, so the content checker is built once
per process (`text_safety()`) and shared by every app in it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from livestage.display_names import Impersonation
from livestage.safety import TextSafety
from livestage.settings import SafetySettings

PICK_ANOTHER = "please pick another name"
LANGUAGE_REASON = f"contains language that isn't allowed here; {PICK_ANOTHER}"
CONTENT_REASONS = {
    "zalgo": f"has too many stacked accent marks to read; {PICK_ANOTHER}",
    "blocklist": LANGUAGE_REASON,
    "wordlist": LANGUAGE_REASON,
    "classifier": f"looks insulting or abusive; {PICK_ANOTHER}",
}
"""The reason by content check, worded for a name (a check added later reads LANGUAGE_REASON)."""


@dataclass(frozen=True)
class NameProblem:
    check: str
    """`impersonation`, or the content check that refused it (`blocklist`, `wordlist`, ...)."""
    reason: str
    """A sentence for the person; never repeats the name."""

    @property
    def error_type(self) -> str:
        """The 422 item's `type`."""
        return "name_reserved" if self.check == "impersonation" else "name_not_allowed"


@functools.cache
def text_safety() -> TextSafety:
    """The process's content checker (word lists and classifier loaded once)."""
    return TextSafety.from_settings(SafetySettings())


class NameCheck:
    def __init__(self, safety: TextSafety, impersonation: Impersonation) -> None:
        self._safety = safety
        self._impersonation = impersonation

    @classmethod
    def build(cls, reserved_names: Iterable[str]) -> NameCheck:
        return cls(text_safety(), Impersonation(reserved_names))

    def check(self, name: str) -> NameProblem | None:
        verdict = self._safety.check(name)
        if verdict is not None:
            return NameProblem(verdict.check, CONTENT_REASONS.get(verdict.check, LANGUAGE_REASON))
        reserved = self._impersonation.match(name)
        if reserved is not None:
            return NameProblem(
                "impersonation",
                f"looks like “{reserved}”, which is reserved for the host and the show's staff; "
                f"{PICK_ANOTHER}",
            )
        return None
