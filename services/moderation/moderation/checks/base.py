"""The contract of a moderation check: a name and a pure `check(message, context)`.

A check looks at one chat message and what the wiring loaded for it (the normalized text, the
author's recent messages, strikes, mute, ban, an OpenAI answer) and returns a `Verdict` when it
rejects, or None. It does no I/O and keeps no state between calls: the wiring (`app.py`) loads
state from Redis into the `Context` before and records new state after.

Adding a check: a file beside its siblings with a `Check` subclass (its `name`, and a
`from_settings` when it reads settings), its class in `moderation.checks.CHECKS` and a row in
that module's table; then name it in `MODERATION_CHECKS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

from livestage.bans import Ban
from livestage.safety.normalize import Normalized
from livestage.safety.openai import OpenAIResult as OpenAIResult
from livestage.schemas import ChatMessage
from moderation.settings import ModerationSettings


@dataclass(frozen=True)
class Verdict:
    """A check's rejection: which check, a reason the viewer can read, and whether it strikes.

    `reason` is shown to the author: a whole sentence that never repeats what they wrote.
    `strike` counts toward a temporary mute (abuse does; a typo-like slip such as caps does not).
    """

    check: str
    reason: str
    strike: bool = False


@dataclass(frozen=True)
class RecentMessage:
    """One earlier message of the same visitor (any verdict)."""

    message_id: str
    created_at: int
    fingerprint: str


@dataclass(frozen=True)
class Context:
    """Everything a check may look at besides the message itself."""

    normalized: Normalized
    recent: tuple[RecentMessage, ...] = ()
    """The author's other messages (already judged) within the longest spam window on either
    side of this one's `createdAt`, oldest first."""
    strikes: int = 0
    """Strikes the author collected within the strike window (before this message)."""
    muted_until_ms: int = 0
    ban: Ban | None = None
    openai: OpenAIResult | None = None
    """None when OpenAI was not asked (disabled, or an offline check already rejected)."""
    room_place: int | None = None
    """This message's place (1-based) among the room's messages approved in its window of
    `createdAt`; None until every other check approved it (see `checks/room_rate.py`)."""
    room_limit: int | None = None
    """The cap that place counts against when the room's show sets its own (`roomRate`, per
    minute); None: the deployment's (MODERATION_ROOM_RATE, per second)."""


class Check(ABC):
    """One rule. Subclasses set `name` and implement `check`."""

    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        """Build the check from the service's settings (load lists and models here, once)."""
        return cls()

    @abstractmethod
    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        """A Verdict when the message must be rejected, else None. Pure."""

    def reject(self, reason: str, *, strike: bool = False) -> Verdict:
        return Verdict(self.name, reason, strike)
