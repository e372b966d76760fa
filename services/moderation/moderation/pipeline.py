"""Running the configured checks over one message: pure, data in, decision out.

Every check runs (so an operator sees all the rules a message broke); the first rejection in the
configured order gives the viewer the reason. `strike_outcome` decides, from the decision and the
author's strikes, whether this message adds a strike and whether that strike starts a mute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from livestage.safety.normalize import normalize
from livestage.schemas import ChatMessage
from moderation.checks import Check, Context, Verdict
from moderation.settings import ModerationSettings


@dataclass(frozen=True)
class Decision:
    rejections: tuple[Verdict, ...]
    fingerprint: str
    """The message's normalized reading, recorded for later duplicate checks."""

    @property
    def approved(self) -> bool:
        return not self.rejections

    @property
    def verdict(self) -> str:
        return "approved" if self.approved else "rejected"

    @property
    def checks(self) -> list[str]:
        return [rejection.check for rejection in self.rejections]

    @property
    def reason(self) -> str:
        return self.rejections[0].reason if self.rejections else ""

    @property
    def strike(self) -> bool:
        return any(rejection.strike for rejection in self.rejections)


@dataclass(frozen=True)
class StrikeOutcome:
    add_strike: bool = False
    mute_until_ms: int = 0
    """Set when this strike reaches the limit: the author is muted until then."""


class Pipeline:
    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = list(checks)
        self.names = [check.name for check in self.checks]

    def context_for(self, message: ChatMessage, **state: object) -> Context:
        """A context with the normalized body and whatever state the wiring loaded."""
        return Context(normalize(message.body), **state)  # type: ignore[arg-type]

    def decide(self, message: ChatMessage, context: Context) -> Decision:
        rejections = []
        for check in self.checks:
            verdict = check.check(message, context)
            if verdict is not None:
                rejections.append(verdict)
        return Decision(tuple(rejections), context.normalized.fingerprint)


def strike_outcome(
    decision: Decision, context: Context, at_ms: int, settings: ModerationSettings
) -> StrikeOutcome:
    """A strike for a rejection that strikes, unless the author is already muted or banned."""
    already_silenced = context.muted_until_ms > at_ms or (
        context.ban is not None and context.ban.active(at_ms)
    )
    if not decision.strike or already_silenced:
        return StrikeOutcome()
    if context.strikes + 1 >= settings.strikes_to_mute:
        return StrikeOutcome(True, at_ms + int(settings.mute_s * 1000))
    return StrikeOutcome(True)
