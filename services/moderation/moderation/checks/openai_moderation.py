"""`openai`: OpenAI's moderation endpoint (`omni-moderation-latest`), when a key is set and
`MODERATION_OPENAI_ENABLED` is on.

The wiring asks the endpoint (only for messages the offline checks approved) and puts the answer
in `Context.openai`; this check turns it into a verdict. When the call failed or timed out,
`MODERATION_OPENAI_FAIL_MODE` decides: `open` lets the message through (the offline checks
passed it), `closed` rejects it and asks the viewer to try again (no strike: not their fault)."""

from __future__ import annotations

from typing import Literal, Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings

CATEGORY_REASONS = (
    (
        "self-harm",
        "Your message mentions self-harm. If you are struggling, please reach out to "
        "someone you trust or a local helpline.",
    ),
    ("sexual", "Your message has sexual content, which isn't allowed here."),
    ("hate", "Your message looks hateful toward a group of people."),
    ("harassment", "Your message looks like harassment; please keep it friendly."),
    ("violence", "Your message looks violent or threatening."),
    ("illicit", "Your message looks like it encourages something illegal."),
)
"""Reasons by category prefix, most specific first (`hate/threatening` reads as hate)."""
FLAGGED_REASON = "Your message was flagged by our safety check."
UNAVAILABLE_REASON = "We couldn't check your message just now; please try again in a moment."


def reason_for(categories: tuple[str, ...]) -> str:
    for prefix, reason in CATEGORY_REASONS:
        if any(category.startswith(prefix) for category in categories):
            return reason
    return FLAGGED_REASON


class OpenAIModeration(Check):
    name = "openai"

    def __init__(self, fail_mode: Literal["open", "closed"] = "open") -> None:
        self.fail_mode = fail_mode

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(settings.openai_fail_mode)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        answer = context.openai
        if answer is None:
            return None
        if answer.error:
            if self.fail_mode == "closed":
                return self.reject(UNAVAILABLE_REASON)
            return None
        if answer.flagged:
            return self.reject(reason_for(answer.categories), strike=True)
        return None
