"""Per-show moderation (`ShowConfig.moderation`), on top of the deployment's checks.

- `blockedWords`: refused like the block list (every normalized spelling, whole words, any case;
  `*` at a word's start or end as in the list files), with the same reason the viewer sees and a
  strike; check name `show_words`.
- `roomRate`: the show's room cap in approved messages per minute of `createdAt` (a fixed
  window, counted in Redis across every instance like `room_rate`), replacing
  MODERATION_ROOM_RATE's per-second cap for that room; past it the author gets `room_rate`'s
  "Chat is busy right now" (no strike).

A room's rules are read from the show store (`livestage.shows.ShowStore`) and kept
`SHOW_RULES_TTL_S` (a change applies within that); a room without a show record, or Redis not
answering (logged once per outage), has the deployment's rules only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from livestage.safety.matching import WordList, WordListError
from livestage.schemas import ChatMessage, ShowModerationConfig
from livestage.shows import ShowStore
from moderation.checks.base import Context, Verdict
from moderation.checks.blocklist import LANGUAGE_REASON
from moderation.checks.room_rate import BUSY_REASON
from moderation.pipeline import Decision, Pipeline
from moderation.state import CLAIM_ROOM_PLACE, PREFIX, ROOM_PLACES_TTL_MS

log = logging.getLogger(__name__)

SHOW_RULES_TTL_S = 3.0
"""How long a room's show rules are kept before the store is asked again."""
SHOW_READ_TIMEOUT_S = 1.0
MINUTE_MS = 60_000
SHOW_WORDS = "show_words"


def show_places_key(room: str, minute: int) -> str:
    """The approved messages of a show's room in one minute of `createdAt` (its own cap)."""
    return f"{PREFIX}:room-minute:{room}:{minute}"


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
    per_minute: int | None = None

    @classmethod
    def of(cls, config: ShowModerationConfig, room: str) -> RoomRules:
        return cls(word_list(config.blocked_words, room), config.room_rate)

    def decide(self, pipeline: Pipeline, message: ChatMessage, context: Context) -> Decision:
        """The pipeline's decision, with the show's words as one more check."""
        decision = pipeline.decide(message, context)
        if self.words is None or not self.words.matches(context.normalized):
            return decision
        refused = Verdict(SHOW_WORDS, LANGUAGE_REASON, strike=True)
        return Decision((*decision.rejections, refused), decision.fingerprint)

    def over_cap(self, place: int) -> Verdict | None:
        """`room_rate`'s verdict for a message with this place in its minute."""
        if self.per_minute is None or place <= self.per_minute:
            return None
        return Verdict("room_rate", BUSY_REASON)


NO_RULES = RoomRules()


class ShowRules:
    """Every room's show rules, read from Redis and kept for a few seconds."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_s: float = SHOW_RULES_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = ShowStore(redis)
        self.ttl_s = ttl_s
        self.clock = clock
        self._rules: dict[str, tuple[float, RoomRules]] = {}
        self._claim = redis.register_script(CLAIM_ROOM_PLACE)
        self._redis_away = False

    async def rules(self, room: str) -> RoomRules:
        now = self.clock()
        kept = self._rules.get(room)
        if kept is not None and kept[0] > now:
            return kept[1]
        try:
            async with asyncio.timeout(SHOW_READ_TIMEOUT_S):
                config = await self.store.config(room)
        except Exception as error:  # noqa: BLE001 - Redis or its timeout: the deployment's rules
            if not self._redis_away:
                log.warning(
                    "show rules unknown (%r): the deployment's rules only until Redis answers",
                    error,
                )
            self._redis_away = True
            rules = NO_RULES
        else:
            self._redis_away = False
            rules = RoomRules.of(config.moderation, room) if config is not None else NO_RULES
        self._rules[room] = (now + self.ttl_s, rules)
        return rules

    async def claim_place(self, message: ChatMessage, rules: RoomRules) -> int:
        """The message's place among its room's approved messages in its minute (the same
        place again for a redelivery)."""
        key = show_places_key(message.room, message.created_at // MINUTE_MS)
        keep = rules.per_minute or 0
        return int(await self._claim(keys=[key], args=[message.id, keep, ROOM_PLACES_TTL_MS]))
