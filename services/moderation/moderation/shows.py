"""Per-show moderation (`ShowConfig.moderation`), on top of the deployment's checks.

- `blockedWords`: refused like the block list (every normalized spelling, whole words, any case;
  `*` at a word's start or end as in the list files), with the same reason the viewer sees and a
  strike; check name `show_words`.
- `roomRate`: the show's room cap in approved messages per minute of `createdAt`, replacing
  MODERATION_ROOM_RATE's per-second cap for that room. The same mechanism as the deployment's
  (`checks/room_rate.py`: a `RoomCap`, places claimed in Redis across every instance, in the
  batch's one round trip); past it the author gets `room_rate`'s "Chat is busy right now" (no
  strike).

A room's rules come from the show store through the shared cache (`livestage.shows.ShowCache`),
kept `SHOW_RULES_TTL_S`; a `room.config.<room>` event (`follow`) applies a change at once, the
TTL is the safety net. A room without a show record, or Redis not answering (logged once per
outage), has the deployment's rules only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from livestage.safety.matching import WordList, WordListError
from livestage.schemas import ChatMessage, ShowConfig, ShowConfigEvent, ShowModerationConfig
from livestage.shows import ShowCache, ShowStore
from moderation.checks.base import Context, Verdict
from moderation.checks.blocklist import LANGUAGE_REASON
from moderation.checks.room_rate import RoomCap
from moderation.pipeline import Decision, Pipeline

log = logging.getLogger(__name__)

SHOW_RULES_TTL_S = 3.0
"""How long a room's show rules are kept before the store is asked again."""
SHOW_READ_TIMEOUT_S = 1.0
SHOW_WORDS = "show_words"


def word_list(words: Iterable[str], room: str) -> WordList | None:
    """The show's words as a list (an entry with no letters or digits is skipped, logged)."""
    usable = []
    for word in words:
        try:
            WordList([word])
        except WordListError:
            log.warning("room %s: the show's blocked word %r has no letters; skipped", room, word)
            continue
        usable.append(word)
    return WordList(usable, source=f"show {room}") if usable else None


@dataclass(frozen=True)
class RoomRules:
    """One show's own rules: pure, beside the pipeline's."""

    words: WordList | None = None
    cap: RoomCap | None = None
    """The show's room cap (per minute), replacing the deployment's; None: the deployment's."""

    @classmethod
    def of(cls, config: ShowModerationConfig, room: str) -> RoomRules:
        cap = None if config.room_rate is None else RoomCap.per_minute(config.room_rate)
        return cls(word_list(config.blocked_words, room), cap)

    def decide(self, pipeline: Pipeline, message: ChatMessage, context: Context) -> Decision:
        """The pipeline's decision, with the show's words as one more check."""
        decision = pipeline.decide(message, context)
        if self.words is None or not self.words.matches(context.normalized):
            return decision
        refused = Verdict(SHOW_WORDS, LANGUAGE_REASON, strike=True)
        return Decision((*decision.rejections, refused), decision.fingerprint)


NO_RULES = RoomRules()


class ShowRules:
    """Every room's show rules, from the shared show cache (each room's compiled once per
    configuration)."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_s: float = SHOW_RULES_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = ShowCache(ttl_s, ShowStore(redis), keep_missing=True, clock=clock)
        self._compiled: dict[str, tuple[ShowConfig, RoomRules]] = {}
        self._redis_away = False

    async def rules(self, room: str) -> RoomRules:
        try:
            async with asyncio.timeout(SHOW_READ_TIMEOUT_S):
                config = await self.cache.config(room)
        except Exception as error:  # noqa: BLE001 - Redis or its timeout: the deployment's rules
            if not self._redis_away:
                log.warning(
                    "show rules unknown (%r): the deployment's rules only until Redis answers",
                    error,
                )
            self._redis_away = True
            self.cache.remember(room, None)  # not asked again before the TTL
            return NO_RULES
        self._redis_away = False
        if config is None:
            self._compiled.pop(room, None)
            return NO_RULES
        compiled = self._compiled.get(room)
        if compiled is None or compiled[0] is not config:
            if len(self._compiled) >= self.cache.size:
                self._compiled.clear()
            compiled = (config, RoomRules.of(config.moderation, room))
            self._compiled[room] = compiled
        return compiled[1]

    def follow(self, event: ShowConfigEvent) -> None:
        """A show was created, changed or deleted (`room.config.<room>`): its rules apply now."""
        self.cache.follow(event)
