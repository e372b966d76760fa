"""Pure computations behind the console's numbers (fixed inputs in, figures out).

- chat per minute and rejected share: over the moderation verdicts of the last 10 minutes
  (`VerdictLog`, one entry per message id, timed when JetStream stored the verdict);
- host reaction p50: the median over the last 10 replies (`SpokenTurn.kind == "reply"`) of
  `startedAt` minus the `createdAt` of the message it answered; a reply to several messages
  counts the one that waited longest (the earliest); a reply to messages the edge never saw
  does not count.
"""

from __future__ import annotations

import statistics
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from livestage.schemas import SpokenTurn

CHAT_WINDOW_MS = 10 * 60 * 1000
REACTIONS = 10
VERDICTS_KEPT = 20_000


@dataclass(frozen=True)
class ChatRate:
    per_minute: float
    rejected_share: float


class VerdictLog:
    """Verdicts by message id: (when, rejected)."""

    def __init__(self, cap: int = VERDICTS_KEPT) -> None:
        self.cap = cap
        self._verdicts: OrderedDict[str, tuple[int, bool]] = OrderedDict()

    def add(self, message_id: str, at_ms: int, *, rejected: bool) -> None:
        if message_id in self._verdicts:
            return
        self._verdicts[message_id] = (at_ms, rejected)
        while len(self._verdicts) > self.cap:
            self._verdicts.popitem(last=False)

    def rate(self, now_ms: int) -> ChatRate:
        return chat_rate(self._verdicts.values(), now_ms)


def chat_rate(
    verdicts: Iterable[tuple[int, bool]], now_ms: int, window_ms: int = CHAT_WINDOW_MS
) -> ChatRate:
    """Verdicts per minute over the window ending now, and the share of them rejected (0
    when there were none)."""
    recent = [rejected for at, rejected in verdicts if now_ms - window_ms < at <= now_ms]
    if not recent:
        return ChatRate(0.0, 0.0)
    minutes = window_ms / 60_000
    return ChatRate(
        per_minute=round(len(recent) / minutes, 2),
        rejected_share=round(sum(recent) / len(recent), 3),
    )


def reaction_ms(turn: SpokenTurn, created_at_of: Callable[[str], int | None]) -> int | None:
    """How long the longest-waiting message a reply answered waited for the host to start
    speaking, or None (not a reply, or none of its messages known)."""
    if turn.kind != "reply":
        return None
    known = [at for at in map(created_at_of, turn.reply_to) if at is not None]
    if not known:
        return None
    return max(0, turn.started_at - min(known))


def p50(samples: Iterable[int]) -> int | None:
    values = list(samples)
    return round(statistics.median(values)) if values else None


class Reactions:
    """The last `REACTIONS` reaction times, one per reply turn."""

    def __init__(self, keep: int = REACTIONS) -> None:
        self._samples: deque[tuple[str, int]] = deque(maxlen=keep)

    def add(self, turn_id: str, delay_ms: int) -> None:
        if any(seen == turn_id for seen, _ in self._samples):
            return
        self._samples.append((turn_id, delay_ms))

    @property
    def samples(self) -> list[int]:
        return [delay for _, delay in self._samples]
