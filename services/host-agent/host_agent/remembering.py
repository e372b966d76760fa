"""Remembering: one host job's use of the memory of its regulars (#21), never in its way.

`Remembering` wraps a `livestage.memory.MemoryStore` for one job. It is *off* (nothing read or
written, `outcome="off"` counted) when `MEMORY_ENABLED` is false or the show turned memory off
(`ShowConfig.memory`). Every read and write is bounded by `MEMORY_TIMEOUT_MS` and never raises
into the job: a slow or dead Redis costs at most that wait, off the job's path (the job runs
them in the background), and the host answers without memory.

The show run's id is `<room>:<when the job went live, epoch ms>` (`went_live`).

- A viewer joins (`joined`): their card is read, their attendance counted (`record_show`), and
  `recall.Recall` says whether to greet them with a callback (at most one per viewer per show,
  spaced, newcomers waiting first). One held back by the spacing or by newcomers is asked again
  later (`due`, `next_wakeup`) while the viewer is still in the room.
- An approved message (`heard`; the job reads `chat.approved` only, so a rejected message is
  never remembered): `record_message` (a question is one the brain takes for a question), and
  the author's card is cached. Facts are extracted in the background by an `Extractor` once the
  chat has been quiet for the batch window after a message (one call per batch of messages, not
  per message: a model extractor costs a request per call), then `add_facts` per message.
- The host's answer (`answered`: a `SpokenTurn` naming the messages it answered) is kept with
  each remembered question (`record_answer`).
- A reply's context (`snippets`): the cached cards of the authors answered, as
  `recall.memory_snippet` (bounded, quoted data).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol, TypeVar

from opentelemetry.metrics import Meter
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis

from host_agent.brain import TurnPlan
from host_agent.recall import Callback, Recall, RecallRules, is_regular, memory_snippet
from livestage import metrics
from livestage.facts import extract_facts
from livestage.memory import FactText, MemoryCaps, MemoryCard, MemoryStore, memory_key_of
from livestage.schemas import ChatMessage, ShowConfig, SpokenTurn
from livestage.settings import MemorySettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = Literal["ok", "timeout", "error", "off"]
_FACT: Final = TypeAdapter(FactText)
KEPT_MESSAGE_IDS: Final = 1000
"""Message ids whose author is known to `answered` (the oldest go)."""


class Extractor(Protocol):
    """Finds the facts viewers stated about themselves in a batch of approved messages."""

    source: Literal["rules", "model"]

    async def extract(self, messages: Sequence[ChatMessage]) -> Mapping[str, list[str]]:
        """Message id -> short third-person facts ("is from Lisbon"); absent: none."""
        ...


class RulesExtractor:
    """The offline extractor (`livestage.facts.extract_facts`): no model, no I/O."""

    source: Literal["rules", "model"] = "rules"

    async def extract(self, messages: Sequence[ChatMessage]) -> Mapping[str, list[str]]:
        found = {message.id: extract_facts(message.body) for message in messages}
        return {message_id: facts for message_id, facts in found.items() if facts}


def memory_on(settings: MemorySettings, show: ShowConfig | None) -> bool:
    """Memory is on for the deployment and, when the job hosts a show, for that show."""
    return settings.enabled and (show is None or show.memory)


class Remembering:
    """The memory of regulars for one job (see the module docstring)."""

    def __init__(
        self,
        settings: MemorySettings,
        show: ShowConfig | None,
        redis: Redis,
        *,
        room: str,
        extractor: Extractor | None = None,
        clock: Callable[[], float] = time.time,
        meter: Meter | None = None,
        rules: RecallRules | None = None,
        batch_window_s: float = 2.0,
        extract_timeout_s: float = 20.0,
        present: Callable[[str], bool] = lambda identity: True,
    ) -> None:
        self.on = memory_on(settings, show)
        self.room = room
        self.clock = clock
        self.timeout_s = settings.timeout_ms / 1000
        self.store = MemoryStore(
            redis,
            retention_days=settings.retention_days,
            caps=MemoryCaps(facts=settings.max_facts, max_bytes=settings.max_bytes),
            clock=clock,
        )
        self.extractor: Extractor = extractor or RulesExtractor()
        self.rules = rules or RecallRules()
        self.batch_window_s = batch_window_s
        self.extract_timeout_s = extract_timeout_s
        self._present = present
        self._counter = functools.partial(metrics.counter, meter=meter)
        self.recall: Recall | None = None
        self.show_id = ""
        self._cards: dict[str, MemoryCard] = {}
        self._regulars: set[str] = set()
        self._held: dict[str, str] = {}
        """Regulars whose callback was held back: memory key -> identity."""
        self._joined_early: list[str] = []
        self._authors: dict[str, str] = {}
        """Message id -> its author's memory key (questions only, for `answered`)."""
        self._pending: list[ChatMessage] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._extracting: asyncio.Task[None] | None = None
        self._flush = asyncio.Event()
        """Set at the end: the batch being gathered is extracted at once."""

    # ---- the show --------------------------------------------------------------------------

    def went_live(self, at_ms: int) -> list[str]:
        """The job went live at `at_ms`: this show run's id is set. Returns the identities that
        joined before (the job greets them through `joined` now)."""
        self.show_id = f"{self.room}:{at_ms}"
        self.recall = Recall(
            self.show_id, at_ms, memory_on=self.on, rules=self.rules, clock=self.clock
        )
        early, self._joined_early = self._joined_early, []
        return early

    async def joined(self, identity: str, fresh_authors: Iterable[str] = ()) -> Callback | None:
        """A viewer joined: read their card, count their attendance, and return the callback
        to greet them with now (None: none, or not now). `fresh_authors`: the identities of
        the comments waiting for an answer (a newcomer among them goes first)."""
        key = memory_key_of(identity)
        if key is None:
            return None
        if self.recall is None:
            self._joined_early.append(identity)
            return None
        if not self.on:
            self._count_off(metrics.MEMORY_READS)
            return None
        read_ok, card = await self._bounded(metrics.MEMORY_READS, self.store.card(key))
        if not read_ok:
            return None  # no memory this time: a usual greeting
        await self._bounded(metrics.MEMORY_WRITES, self.store.record_show(key, self.show_id))
        if card is not None:
            self._cards[key] = card
        if is_regular(card, self.show_id):
            self._regulars.add(key)
        callback = self.recall.callback(card, newcomers_waiting=self._newcomers(fresh_authors))
        if callback is None and key in self._regulars and not self.recall.spaced():
            self._held[key] = identity
        elif callback is None and key in self._regulars and self._newcomers(fresh_authors):
            self._held[key] = identity
        return callback

    def called_back(self, callback: Callback) -> None:
        """The job handed `callback` to the brain: none again for that viewer this show."""
        if self.recall is not None:
            self.recall.called_back(callback.key)
        self._held.pop(callback.key, None)
        self._counter(metrics.MEMORY_CALLBACKS).add(1, {"kind": callback.kind})

    def due(self, fresh_authors: Iterable[str] = ()) -> list[Callback]:
        """Held-back callbacks that may go now (the viewer still in the room)."""
        if self.recall is None or not self._held:
            return []
        due: list[Callback] = []
        for key, identity in list(self._held.items()):
            if not self._present(identity):
                del self._held[key]
                continue
            callback = self.recall.callback(
                self._cards.get(key), newcomers_waiting=self._newcomers(fresh_authors)
            )
            if callback is not None:
                del self._held[key]
                due.append(callback)
                break  # the spacing starts again with this one
        return due

    def next_wakeup(self) -> float | None:
        """When a held-back callback may go (epoch seconds), None when none is held."""
        if self.recall is None or not self._held:
            return None
        return self.recall.next_callback_at()

    def _newcomers(self, fresh_authors: Iterable[str]) -> int:
        keys = {memory_key_of(identity) for identity in fresh_authors}
        return len({key for key in keys if key is not None and key not in self._regulars})

    # ---- what viewers say, what the host answers -----------------------------------------

    async def heard(self, message: ChatMessage, *, question: bool) -> None:
        """An APPROVED message (never call it with anything else): remember it, and extract
        its facts with the next batch."""
        key = memory_key_of(message.author_identity)
        if key is None or message.kind != "viewer":
            return
        if not self.on:
            self._count_off(metrics.MEMORY_WRITES)
            return
        if question:
            self._authors[message.id] = key
            while len(self._authors) > KEPT_MESSAGE_IDS:
                del self._authors[next(iter(self._authors))]
        ok, card = await self._bounded(
            metrics.MEMORY_WRITES, self.store.record_message(message, question=question)
        )
        if ok and card is not None:
            self._cards[key] = card
        self._pending.append(message)
        if self._extracting is None or self._extracting.done():
            self._extracting = self.spawn(self._extract_batch())

    async def _extract_batch(self) -> None:
        # the batch: every message heard until the window after the first one is over
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush.wait(), self.batch_window_s)
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            async with asyncio.timeout(self.extract_timeout_s):
                found = await self.extractor.extract(batch)
        except Exception as error:  # noqa: BLE001 - a failing extractor costs only the facts
            log.warning("room %s: facts not extracted (%r)", self.room, error)
            return
        for message in batch:
            key = memory_key_of(message.author_identity)
            facts = [fact for fact in found.get(message.id, []) if _valid_fact(fact)]
            if key is None or not facts:
                continue
            ok, card = await self._bounded(
                metrics.MEMORY_WRITES,
                self.store.add_facts(
                    key,
                    facts,
                    message_id=message.id,
                    at=message.created_at,
                    source=self.extractor.source,
                ),
            )
            if ok and card is not None:
                self._cards[key] = card

    async def answered(self, spoken: SpokenTurn) -> None:
        """The host answered `spoken.reply_to`: keep its words with each remembered question."""
        asked = [(m, self._authors[m]) for m in spoken.reply_to if m in self._authors]
        if not asked:
            return
        if not self.on:
            self._count_off(metrics.MEMORY_WRITES)
            return
        for message_id, key in asked:
            await self._bounded(
                metrics.MEMORY_WRITES,
                self.store.record_answer(key, message_id, spoken.text, at=spoken.ended_at),
            )

    def snippets(self, plan: TurnPlan) -> list[dict[str, Any]]:
        """What is remembered of the authors `plan` answers, as quoted-data snippets."""
        if not self.on or plan.kind != "reply":
            return []
        now_ms = int(self.clock() * 1000)
        cards = []
        for comment in plan.comments:
            key = memory_key_of(comment.author_identity)
            card = self._cards.get(key) if key is not None else None
            if card is not None and not card.empty and card not in cards:
                cards.append(card)
        return [memory_snippet(card, now_ms, self.rules) for card in cards]

    def card(self, identity: str) -> MemoryCard | None:
        """The cached card of a viewer (as last read or written by this job)."""
        key = memory_key_of(identity)
        return self._cards.get(key) if key is not None else None

    # ---- background work -----------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run memory work in the background (the job never waits for it)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settle(self, within_s: float) -> None:
        """Extract the batch being gathered at once, wait (bounded) for the background work
        under way, then cancel what is left."""
        self._flush.set()
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=within_s)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def _bounded(self, spec: metrics.MetricSpec, op: Awaitable[T]) -> tuple[bool, T | None]:
        """Run a read or write within the timeout; (False, None) when it failed (counted)."""
        outcome: Outcome = "ok"
        try:
            async with asyncio.timeout(self.timeout_s):
                return True, await op
        except TimeoutError:
            outcome = "timeout"
        except Exception as error:  # noqa: BLE001 - memory never breaks the job: counted, logged
            outcome = "error"
            log.warning("room %s: memory %s failed (%r)", self.room, spec.name, error)
        finally:
            self._counter(spec).add(1, {"outcome": outcome})
        return False, None

    def _count_off(self, spec: metrics.MetricSpec) -> None:
        self._counter(spec).add(1, {"outcome": "off"})


def _valid_fact(text: str) -> bool:
    try:
        _FACT.validate_python(text)
    except ValidationError:
        return False
    return True
