"""A job's usage of the paid backends: counted, priced, exported, and held to the daily cap.

The job hands `Metering` what its sessions report:

- `session_usage(voice, seen, usage)` on each `session_usage_updated` (cumulative per model;
  the difference from what was `seen` of that session is new): tokens from OpenAI Realtime's
  `response.done` usage and from chat-completions usage, seconds from a speech endpoint;
- `speech(backend, seconds)` when a voice that is billed by its audio stops speaking;
- `avatar_started(backend)` / `avatar_tick()` / `avatar_stopped()` around a paid avatar's life
  (minutes are counted as they pass, so the cap sees them before the job ends).

Each addition goes into the `UsageLedger` (pure), into the metrics (`MODEL_TOKENS`,
`MODEL_AUDIO_TIME`, `AVATAR_SESSION_TIME`, `MODEL_SPEND`, each with `backend` and `room`), and
its spend into the room's total for the UTC day in Redis (`SpendStore`). When that total
reaches `HOST_COST_DAILY_CAP_USD`, `on_cap(total)` is called (the job switches to the local
backends). Redis being away is logged once and the job's own spend stands in for the room's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage, TTSModelUsage
from opentelemetry.metrics import Counter

from host_agent.config import JobConfig
from host_agent.spend import SpendStore, SpendUnavailable
from host_agent.usage import Prices, Tokens, UsageDelta, UsageLedger, over_cap
from livestage import metrics
from livestage.kv import connect_redis
from livestage.settings import derive

log = logging.getLogger(__name__)

UsageKey = tuple[str, str, str]
"""(usage type, provider, model): one entry of a session's usage."""


def prices_from(config: JobConfig) -> Prices:
    return derive(Prices, config.cost)


def llm_tokens(now: LLMModelUsage, before: LLMModelUsage | None) -> Tokens:
    """The tokens `now` adds to `before` (cumulative usage of one model in one session).

    Realtime usage splits text and audio; chat-completions usage has only totals, which count
    as text.
    """

    def diff(name: str) -> int:
        value = int(getattr(now, name)) - (int(getattr(before, name)) if before else 0)
        return max(0, value)

    input_text, input_audio = diff("input_text_tokens"), diff("input_audio_tokens")
    output_text, output_audio = diff("output_text_tokens"), diff("output_audio_tokens")
    cached_text, cached_audio = diff("input_cached_text_tokens"), diff("input_cached_audio_tokens")
    if not input_text and not input_audio:
        input_text = diff("input_tokens")
    if not output_text and not output_audio:
        output_text = diff("output_tokens")
    if not cached_text and not cached_audio:
        cached_text = diff("input_cached_tokens")
    return Tokens(input_text, input_audio, cached_text, cached_audio, output_text, output_audio)


class Metering:
    def __init__(
        self,
        room: str,
        config: JobConfig,
        on_cap: Callable[[float], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.room = room
        self.config = config
        self.ledger = UsageLedger(prices_from(config))
        self.on_cap = on_cap
        self.clock = clock
        self.room_spent_today: float | None = None
        """The room's spend today as Redis last said (None: not read yet or Redis away)."""
        self._store: SpendStore | None = None
        self._redis_warned = False
        self._capped = False
        self._avatar: tuple[str, float] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _counter(self, spec: metrics.MetricSpec) -> Counter:
        return metrics.counter(spec, meter=self.config.meter)

    @property
    def cap_usd(self) -> float:
        return self.config.cost.daily_cap_usd

    # ---- what the sessions report ---------------------------------------------------------

    def session_usage(
        self,
        usage_backend: Callable[[ModelUsage], str | None],
        seen: dict[UsageKey, ModelUsage],
        usage: list[ModelUsage],
    ) -> None:
        for entry in usage:
            backend = usage_backend(entry)
            if backend is None:
                continue
            key = (type(entry).__name__, entry.provider, entry.model)
            before = seen.get(key)
            seen[key] = entry.model_copy()
            if isinstance(entry, LLMModelUsage):
                assert before is None or isinstance(before, LLMModelUsage)
                self.record(self.ledger.tokens(backend, llm_tokens(entry, before)))
            elif isinstance(entry, TTSModelUsage):
                assert before is None or isinstance(before, TTSModelUsage)
                seconds = entry.audio_duration - (before.audio_duration if before else 0.0)
                self.record(self.ledger.audio(backend, seconds))

    def speech(self, backend: str | None, seconds: float) -> None:
        if backend is not None and seconds > 0:
            self.record(self.ledger.audio(backend, seconds))

    def avatar_started(self, backend: str) -> None:
        self._avatar = (backend, self.clock())

    def avatar_tick(self) -> None:
        if self._avatar is not None:
            backend, since = self._avatar
            now = self.clock()
            self._avatar = (backend, now)
            self.record(self.ledger.avatar(backend, now - since))

    def avatar_stopped(self) -> None:
        self.avatar_tick()
        self._avatar = None

    # ---- metrics and the cap --------------------------------------------------------------

    def record(self, delta: UsageDelta) -> None:
        if delta.empty:
            return
        base = {"backend": delta.backend, "room": self.room}
        for (direction, modality), count in delta.tokens.by_kind().items():
            self._counter(metrics.MODEL_TOKENS).add(
                count, base | {"direction": direction, "modality": modality}
            )
        if delta.audio_s:
            self._counter(metrics.MODEL_AUDIO_TIME).add(delta.audio_s, base)
        if delta.avatar_s:
            self._counter(metrics.AVATAR_SESSION_TIME).add(delta.avatar_s, base)
        if delta.spend_usd:
            self._counter(metrics.MODEL_SPEND).add(delta.spend_usd, base)
            task = asyncio.ensure_future(self._add_spend(delta.spend_usd))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _store_or_none(self) -> SpendStore | None:
        if self._store is None:
            redis = connect_redis(self.config.redis, timeout_s=2.0, retries=1)
            self._store = SpendStore(redis, self.config.clock)
        return self._store

    def _redis_away(self, error: SpendUnavailable) -> None:
        if not self._redis_warned:
            self._redis_warned = True
            log.warning(
                "room %s: %s; the daily cap counts only this job's spend until Redis answers",
                self.room,
                error,
            )

    async def _add_spend(self, usd: float) -> None:
        store = self._store_or_none()
        assert store is not None
        try:
            total = await store.add(self.room, usd)
        except SpendUnavailable as error:
            self._redis_away(error)
            total = max(self.room_spent_today or 0.0, 0.0) + usd
        self.room_spent_today = max(total, self.ledger.spend_usd)
        self._check_cap()

    def _check_cap(self) -> None:
        spent = self.room_spent_today or 0.0
        if not self._capped and over_cap(spent, self.cap_usd):
            self._capped = True
            self.on_cap(spent)

    async def cap_reached(self) -> bool:
        """Read the room's spend today (before starting paid backends): at or over the cap?"""
        if self.cap_usd <= 0:
            return False
        store = self._store_or_none()
        assert store is not None
        try:
            self.room_spent_today = await store.today(self.room)
        except SpendUnavailable as error:
            self._redis_away(error)
            return False
        return over_cap(self.room_spent_today, self.cap_usd)

    def summary(self) -> dict[str, float]:
        usage = self.ledger.summary()
        if self.room_spent_today is not None and self.ledger.spend_usd:
            usage["spend_usd_room_today"] = round(self.room_spent_today, 6)
        return usage

    async def aclose(self) -> None:
        self.avatar_stopped()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)
        if self._store is not None:
            await self._store.aclose()
