"""What the host remembers about each viewer across shows: the memory card, kept in Redis.

A viewer's *memory card* (`MemoryCard`, camelCase on the wire like `livestage.schemas`) is keyed
by who they are for as long as they keep coming back (`memory_key_of`, the same key a ban uses):
a page viewer's visitor tag (the keyed hash of the server-issued cookie id, never the id
itself), or `<platform>:<user id>` for a YouTube or Twitch chat author. It holds the names they
used, when they were first and last seen, the shows they attended (a count and the last few show
ids), topics they talked about, their last few questions with what the host answered, and facts
they stated about themselves (`MemoryFact`: text, when, from which message, and whether the
offline rules or a model extracted it).

Only moderated-in text is ever remembered: the store is called with approved messages only
(chat-history and the host agent read `chat.approved`), and a fact is refused unless it is clean
text within `MAX_FACT_CHARS`.

    store = MemoryStore(redis, retention_days=180)
    await store.record_message(message, question=True, topics=["aurora"])   # approved only
    await store.record_answer(key, message_id, "It shows up best in March.")
    await store.record_show(key, "livestage:1765000000000")   # once per show id
    await store.add_facts(key, ["is from Lisbon"], message_id=m.id, at=m.created_at)
    card = await store.card(key)        # MemoryCard, or None: nothing remembered
    await store.forget(key)             # erases the card; leaves only the erasure time

Layout: `livestage:memory:card:{<key>}` holds the card as JSON with a Redis TTL of the
retention, refreshed on every write (a viewer not seen for `retention_days` is forgotten by
Redis itself). Facts, questions and topics older than the retention also drop out of a card on
every read and write, so a regular's old facts go while the card lives on. Every count is capped
(`MemoryCaps`: the oldest go first) and so is the card's size in bytes (the oldest fact, question
or topic goes until it fits). Writes are optimistic transactions (WATCH), so two replicas
writing one viewer's card at once both land.

Forgetting (`forget`): every key of the viewer's (`viewer_keys`) is deleted and
`livestage:memory:erased:<key>` is left holding only the time of the erasure (epoch ms), for the
retention. A write about a message from before that time is dropped (an extraction or an
answer still in flight cannot bring the memory back); anything the viewer says afterwards starts
a new card, so the host greets them as a newcomer.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal, TypeVar

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import WatchError

from livestage.identity import BAN_KEY_PATTERN, ban_key_of
from livestage.schemas import (
    ChatBody,
    ChatMessage,
    DisplayName,
    EpochMs,
    MessageId,
    WireModel,
    _must_be_clean,
)
from livestage.text import clean_text, shorten

MEMORY_PREFIX: Final = "livestage:memory"
DAY_MS: Final = 86_400_000

MAX_FACT_CHARS: Final = 120
MAX_TOPIC_CHARS: Final = 48
MAX_ANSWER_CHARS: Final = 300
SHOW_ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,128}$"

MemoryKey = Annotated[str, StringConstraints(pattern=BAN_KEY_PATTERN)]
"""A visitor tag (page viewers) or `<platform>:<user id>` (platform chat authors)."""
ShowId = Annotated[str, StringConstraints(pattern=SHOW_ID_PATTERN)]
"""One run of a show, as the caller names it (e.g. `<room>:<went live, epoch ms>`)."""
_SHOW_ID: Final = TypeAdapter(ShowId)
FactText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_FACT_CHARS),
    AfterValidator(_must_be_clean),
]
TopicText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TOPIC_CHARS),
    AfterValidator(_must_be_clean),
]
AnswerText = Annotated[
    str, StringConstraints(max_length=MAX_ANSWER_CHARS), AfterValidator(_must_be_clean)
]


class MemoryFact(WireModel):
    """Something a viewer said about themselves, in the third person ("is from Lisbon")."""

    text: FactText
    at: EpochMs
    message_id: MessageId
    source: Literal["rules", "model"]


class MemoryQuestion(WireModel):
    """A question the viewer asked, and what the host answered ("" until it does)."""

    message_id: MessageId
    text: ChatBody
    asked_at: EpochMs
    answer: AnswerText = ""
    answered_at: EpochMs | None = None


class MemoryTopic(WireModel):
    name: TopicText
    at: EpochMs


class MemoryShows(WireModel):
    count: int = Field(default=0, ge=0)
    last: list[ShowId] = Field(default_factory=list, max_length=64)
    """The most recent show ids, oldest first."""


class MemoryCard(WireModel):
    """Everything remembered about one viewer (lists oldest first)."""

    key: MemoryKey
    names: list[DisplayName] = Field(default_factory=list, max_length=64)
    first_seen: EpochMs
    last_seen: EpochMs
    shows: MemoryShows = Field(default_factory=MemoryShows)
    topics: list[MemoryTopic] = Field(default_factory=list, max_length=256)
    questions: list[MemoryQuestion] = Field(default_factory=list, max_length=256)
    facts: list[MemoryFact] = Field(default_factory=list, max_length=256)

    @property
    def name(self) -> str:
        """The name they used last ("" when none)."""
        return self.names[-1] if self.names else ""

    @property
    def empty(self) -> bool:
        """Nothing to call back to: no facts, questions or topics."""
        return not (self.facts or self.questions or self.topics)


@dataclass(frozen=True)
class MemoryCaps:
    """How much one card may hold; the oldest entries go first."""

    names: int = 5
    topics: int = 10
    questions: int = 5
    facts: int = 20
    shows: int = 10
    max_bytes: int = 4096

    def __post_init__(self) -> None:
        if min(self.names, self.topics, self.questions, self.facts, self.shows) < 1:
            raise ValueError("every memory cap must be at least 1")
        if self.max_bytes < MIN_CARD_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_CARD_BYTES}, not {self.max_bytes}")


MIN_CARD_BYTES: Final = 2048
"""A card with its key, five longest names and ten show ids fits (about 1.4 KB)."""


class MemoryConflict(RuntimeError):
    """A card kept changing under a write (`MemoryStore.WRITE_ATTEMPTS` optimistic tries)."""


def memory_key_of(identity: str) -> str | None:
    """Whose memory a chat author's identity is: the visitor tag of a viewer identity, the
    platform identity itself; None for anyone else (the host, the avatar)."""
    return ban_key_of(identity)


_MEMORY_KEY: Final = re.compile(BAN_KEY_PATTERN)


def _check_key(key: str) -> str:
    if not _MEMORY_KEY.fullmatch(key):
        raise ValueError(f"not a memory key: {key!r} (a visitor tag or <platform>:<user id>)")
    return key


def card_key(key: str) -> str:
    return f"{MEMORY_PREFIX}:card:{{{_check_key(key)}}}"


def erased_key(key: str) -> str:
    return f"{MEMORY_PREFIX}:erased:{_check_key(key)}"


def viewer_keys(key: str) -> tuple[str, ...]:
    """Every Redis key that holds something about the viewer (what `forget` deletes)."""
    return (card_key(key),)


def normalized(text: str) -> str:
    """How two facts or topics are compared: case and spacing do not matter."""
    return " ".join(text.casefold().split()).rstrip(".!")


Item = TypeVar("Item")


def _newest(items: Sequence[Item], cap: int) -> list[Item]:
    return list(items[-cap:]) if len(items) > cap else list(items)


class MemoryStore:
    """Memory cards in Redis (see the module docstring for the layout and the rules)."""

    WRITE_ATTEMPTS: Final = 16

    def __init__(
        self,
        redis: Redis,
        retention_days: float,
        caps: MemoryCaps | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not retention_days > 0:
            raise ValueError(f"retention_days must be positive, not {retention_days}")
        self._redis = redis
        self._retention_ms = int(retention_days * DAY_MS)
        self._caps = caps or MemoryCaps()
        self._clock = clock or time.time

    @property
    def retention_s(self) -> int:
        """The Redis TTL of every key (the retention, in whole seconds)."""
        return math.ceil(self._retention_ms / 1000)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- reading -------------------------------------------------------------------------

    async def card(self, key: str) -> MemoryCard | None:
        """The viewer's card with what outlived the retention dropped; None when nothing is
        remembered (never seen, forgotten, or not seen for the retention)."""
        raw = await self._redis.get(card_key(key))
        return self._current(key, raw)

    async def erased_at(self, key: str) -> int | None:
        """When the viewer's memory was last erased (epoch ms), or None."""
        raw = await self._redis.get(erased_key(key))
        return int(raw) if raw is not None else None

    def _current(self, key: str, raw: bytes | str | None) -> MemoryCard | None:
        if raw is None:
            return None
        card = MemoryCard.from_json(raw)
        if card.key != key:
            raise ValueError(f"the card stored for {key!r} is {card.key!r}'s")
        oldest = self._now_ms() - self._retention_ms
        if card.last_seen < oldest:
            return None
        return card.model_copy(
            update={
                "facts": [fact for fact in card.facts if fact.at >= oldest],
                "questions": [q for q in card.questions if q.asked_at >= oldest],
                "topics": [topic for topic in card.topics if topic.at >= oldest],
            }
        )

    # --- writing -------------------------------------------------------------------------

    async def record_message(
        self, message: ChatMessage, *, question: bool = False, topics: Sequence[str] = ()
    ) -> MemoryCard | None:
        """Remember that the author of an APPROVED message was here, under which name, what
        about (`topics`, e.g. the keywords the caller picked) and, for a `question`, what they
        asked. Call it only with moderated-in messages (`chat.approved`): nothing rejected is
        ever remembered. Returns the card, or None when the author has no memory key (the host)
        or the message predates the author's erasure."""
        key = memory_key_of(message.author_identity)
        if key is None or message.kind != "viewer":
            return None
        at = message.created_at
        new_topics = [MemoryTopic(name=_topic(name), at=at) for name in topics if _topic(name)]

        def change(card: MemoryCard) -> MemoryCard:
            names = [n for n in card.names if n != message.author_name] + [message.author_name]
            kept = {normalized(t.name) for t in new_topics}
            merged_topics = [t for t in card.topics if normalized(t.name) not in kept]
            questions = list(card.questions)
            if question and all(q.message_id != message.id for q in questions):
                questions.append(
                    MemoryQuestion(message_id=message.id, text=message.body, asked_at=at)
                )
            return card.model_copy(
                update={
                    "names": names,
                    "first_seen": min(card.first_seen, at),
                    "last_seen": max(card.last_seen, at),
                    "topics": merged_topics + new_topics,
                    "questions": sorted(questions, key=lambda q: q.asked_at),
                }
            )

        return await self._update(key, at, change, create=True)

    async def record_answer(
        self, key: str, message_id: str, answer: str, *, at: int | None = None
    ) -> bool:
        """Keep what the host answered to the viewer's question `message_id` (cut to
        `MAX_ANSWER_CHARS`); False when that question is not remembered."""
        answered_at = self._now_ms() if at is None else at
        text = shorten(clean_text(answer), MAX_ANSWER_CHARS)
        found = False

        def change(card: MemoryCard) -> MemoryCard:
            nonlocal found
            questions = []
            for q in card.questions:
                if q.message_id == message_id:
                    found = True
                    q = q.model_copy(update={"answer": text, "answered_at": answered_at})
                questions.append(q)
            return card.model_copy(update={"questions": questions})

        await self._update(key, answered_at, change, create=False)
        return found

    async def record_show(self, key: str, show_id: str, *, at: int | None = None) -> bool:
        """Count the viewer's attendance of the show run `show_id`, once: False when it was
        counted already (or it predates the viewer's erasure). A viewer who has not chatted yet
        gets a card holding only the attendance (nothing to call back to)."""
        seen_at = self._now_ms() if at is None else at
        _SHOW_ID.validate_python(show_id)  # refuses a malformed show id
        counted = False

        def change(card: MemoryCard) -> MemoryCard:
            nonlocal counted
            if show_id in card.shows.last:
                return card
            counted = True
            shows = MemoryShows(count=card.shows.count + 1, last=[*card.shows.last, show_id])
            return card.model_copy(
                update={"shows": shows, "last_seen": max(card.last_seen, seen_at)}
            )

        await self._update(key, seen_at, change, create=True)
        return counted

    async def add_facts(
        self,
        key: str,
        texts: Sequence[str],
        *,
        message_id: str,
        at: int,
        source: Literal["rules", "model"] = "rules",
    ) -> MemoryCard | None:
        """Add facts the viewer stated in the approved message `message_id` (sent at `at`).

        A fact already remembered (compared ignoring case and spacing) is restated: it moves to
        the newest place with this message's id and time. Beyond the cap the oldest go. A text
        that is not clean or longer than `MAX_FACT_CHARS` is refused (ValueError) before
        anything is written. Facts alone never start a card: the message was recorded first."""
        facts = [
            MemoryFact(text=text, at=at, message_id=message_id, source=source) for text in texts
        ]
        if not facts:
            return await self.card(key)

        def change(card: MemoryCard) -> MemoryCard:
            fresh: dict[str, MemoryFact] = {}
            for fact in facts:
                fresh[normalized(fact.text)] = fact
            kept = [fact for fact in card.facts if normalized(fact.text) not in fresh]
            merged = sorted([*kept, *fresh.values()], key=lambda fact: fact.at)
            return card.model_copy(update={"facts": merged})

        return await self._update(key, at, change, create=False)

    async def forget(self, key: str) -> int:
        """Erase everything remembered about the viewer and leave only the time of the erasure
        (`livestage:memory:erased:<key>`, epoch ms, kept for the retention). Returns the time."""
        erased = self._now_ms()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*viewer_keys(key))
            pipe.set(erased_key(key), str(erased), ex=self.retention_s)
            await pipe.execute()
        return erased

    async def _update(
        self,
        key: str,
        at: int,
        change: Callable[[MemoryCard], MemoryCard],
        *,
        create: bool,
    ) -> MemoryCard | None:
        """Apply `change` to the current card (a new one when `create`) in an optimistic
        transaction; leaving the pipeline unwatches (its reset) on every return."""
        stored_key, erasure_key = card_key(key), erased_key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(self.WRITE_ATTEMPTS):
                try:
                    await pipe.watch(stored_key, erasure_key)
                    raw, erased = await pipe.mget(stored_key, erasure_key)
                    if erased is not None and at <= int(erased):
                        return None  # from before the viewer asked to be forgotten
                    card = self._current(key, raw)
                    if card is None:
                        if not create:
                            return None
                        card = MemoryCard(key=key, first_seen=at, last_seen=at)
                    updated = self._trimmed(change(card))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(stored_key, updated.to_json(), ex=self.retention_s)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue
        raise MemoryConflict(f"{key}'s memory card kept changing: {self.WRITE_ATTEMPTS} tries")

    def _trimmed(self, card: MemoryCard) -> MemoryCard:
        """`card` within the count caps and then the byte cap, oldest entries dropped first."""
        caps = self._caps
        card = card.model_copy(
            update={
                "names": _newest(card.names, caps.names),
                "topics": _newest(card.topics, caps.topics),
                "questions": _newest(card.questions, caps.questions),
                "facts": _newest(card.facts, caps.facts),
                "shows": card.shows.model_copy(
                    update={"last": _newest(card.shows.last, caps.shows)}
                ),
            }
        )
        while len(card.to_json()) > caps.max_bytes:
            card = _without_oldest(card)
        return MemoryCard.model_validate(card.model_dump())  # checked, as a reader will


def _without_oldest(card: MemoryCard) -> MemoryCard:
    """`card` less its oldest fact, question or topic (then names, then show ids)."""
    dated: list[tuple[int, str]] = []
    if card.facts:
        dated.append((card.facts[0].at, "facts"))
    if card.questions:
        dated.append((card.questions[0].asked_at, "questions"))
    if card.topics:
        dated.append((card.topics[0].at, "topics"))
    if dated:
        field = min(dated)[1]
        return card.model_copy(update={field: list(getattr(card, field))[1:]})
    if len(card.names) > 1:
        return card.model_copy(update={"names": card.names[1:]})
    if card.shows.last:
        return card.model_copy(
            update={"shows": card.shows.model_copy(update={"last": card.shows.last[1:]})}
        )
    raise ValueError("a memory card without entries cannot exceed MIN_CARD_BYTES")


def _topic(name: str) -> str:
    return shorten(clean_text(name), MAX_TOPIC_CHARS)
