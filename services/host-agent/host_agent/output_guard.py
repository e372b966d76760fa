"""The host's output checks at work on a job's speech (the I/O around `output_check`).

`OutputGuard` checks what the host is about to say with the offline checks (`livestage.safety`)
and, when `OPENAI_API_KEY` is set, OpenAI's moderation endpoint. A blocked sentence is counted
(`livestage.host.output_blocked{backend,check}`) and logged with its check and reason, never
its words. Three ways in, one per kind of speech:

- `gate(stream)`: the model's text before it reaches the voice (the local voice's house brain,
  the pipeline's chat model; `HostAgent.llm_node`). Each sentence is held until it is checked
  (while the next ones are checked), a blocked one is dropped, so nothing downstream (the
  speech, the captions, the turn's text on `host.spoken`) ever holds it. A turn left with
  nothing says `MOVE_ON`.
- `filter_say(text)`: words an operator has the host say, checked before they are queued.
- `watch(transcript, cut)`: OpenAI Realtime, whose words arrive with their audio. The
  transcript's words are checked at every delta (the word lists) and each finished sentence by
  every check (the classifier, OpenAI); a blocked one calls `cut` (the turn is interrupted:
  its audio stops and the queued audio is cleared) and is never captioned. Captions are
  released a sentence at a time, once checked, so what the turn is recorded as saying (the
  captions the audio reached) holds no blocked words.

OpenAI's endpoint failing (timeout, 5xx) lets the offline verdict stand: the host keeps talking,
and the failure is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import FlushSentinel, llm
from opentelemetry.metrics import Meter

from host_agent.config import JobConfig
from host_agent.output_check import (
    MOVE_ON,
    PARTIAL_WORD_WAIT_S,
    Blocked,
    SentenceSplitter,
    TextChecker,
    TranscriptWatch,
    split_sentences,
    verdict,
)
from livestage import metrics
from livestage.safety.openai import OpenAIModerator

log = logging.getLogger(__name__)


@dataclass
class _Ready:
    """Something the gate passes on unchecked (a chunk without text, a flush)."""

    item: Any


class OutputGuard:
    """The output checks of one job (see the module docstring)."""

    def __init__(
        self,
        checker: TextChecker,
        moderator: OpenAIModerator | None,
        *,
        room: str,
        backend: Callable[[], str],
        words: TextChecker | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.checker = checker
        self.words = words or checker
        """The checks that judge single words, for a transcript as it streams."""
        self.moderator = moderator
        self.room = room
        self._backend = backend
        self._counter = functools.partial(metrics.counter, meter=meter)

    async def aclose(self) -> None:
        """Close the connection to OpenAI's endpoint (the job is over)."""
        if self.moderator is not None:
            await self.moderator.close()

    # ---- verdicts ---------------------------------------------------------------------------

    async def check(self, text: str) -> Blocked | None:
        """`text`'s verdict: the offline checks, then OpenAI's (when keyed)."""
        if (blocked := verdict(self.checker, text)) is not None:
            return blocked
        if self.moderator is None or not text.strip():
            return None
        result = await self.moderator.moderate(text.strip())
        if result.error:
            log.info(
                "room %s: OpenAI moderation of the host's words failed (%s); the offline "
                "checks stand",
                self.room,
                result.error,
            )
            return None
        if result.flagged:
            categories = ", ".join(result.categories) or "unspecified"
            return Blocked("openai", f"OpenAI's moderation flagged it ({categories})")
        return None

    def blocked(self, blocked: Blocked, where: str) -> None:
        """Count and log one blocked sentence (its check and reason, never its words)."""
        backend = self._backend()
        self._counter(metrics.HOST_OUTPUT_BLOCKED).add(
            1, {"backend": backend, "check": blocked.check}
        )
        log.warning(
            "room %s: blocked a sentence of the host's %s on voice %s (%s: %s)",
            self.room,
            where,
            backend,
            blocked.check,
            blocked.reason,
        )

    # ---- text known before it is spoken -----------------------------------------------------

    async def filter_say(self, text: str) -> str:
        """`text` without its blocked sentences (`MOVE_ON` if none is left)."""
        sentences = split_sentences(text)
        verdicts = await asyncio.gather(*(self.check(s) for s in sentences))
        if not any(verdicts):
            return text
        for found in verdicts:
            if found is not None:
                self.blocked(found, "say")
        kept = "".join(s for s, found in zip(sentences, verdicts, strict=True) if found is None)
        return kept.strip() or MOVE_ON

    async def gate(self, source: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """The items of an `llm_node` (`str`, `ChatChunk`, `FlushSentinel`) with their text
        passed on a checked sentence at a time; blocked sentences dropped."""
        entries: asyncio.Queue[tuple[str, asyncio.Task[Blocked | None]] | _Ready | None] = (
            asyncio.Queue()
        )
        failure: list[BaseException] = []
        checks: list[asyncio.Task[Blocked | None]] = []

        def sentence(text: str) -> None:
            if text:
                task = asyncio.ensure_future(self.check(text))
                checks.append(task)
                entries.put_nowait((text, task))

        async def produce() -> None:
            splitter = SentenceSplitter()
            try:
                async for item in source:
                    if isinstance(item, FlushSentinel):
                        sentence(splitter.flush())
                        entries.put_nowait(_Ready(item))
                        continue
                    text, rest = _split_item(item)
                    for finished in splitter.push(text):
                        sentence(finished)
                    if rest is not None:
                        entries.put_nowait(_Ready(rest))
                sentence(splitter.flush())
            except Exception as error:  # the model failed: the turn's own error handling
                failure.append(error)
            finally:
                entries.put_nowait(None)

        producer = asyncio.create_task(produce())
        said = blocked_any = False
        try:
            while (entry := await entries.get()) is not None:
                if isinstance(entry, _Ready):
                    yield entry.item
                    continue
                text, task = entry
                found = await task
                if found is not None:
                    blocked_any = True
                    self.blocked(found, "reply")
                    continue
                said = said or bool(text.strip())
                yield text
            if failure:
                raise failure[0]
            if blocked_any and not said:
                yield MOVE_ON
        finally:
            producer.cancel()
            for task in checks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(producer, *checks, return_exceptions=True)

    # ---- text that arrives with its audio ---------------------------------------------------

    async def watch(
        self, transcript: AsyncIterable[str], cut: Callable[[], None]
    ) -> AsyncIterator[str]:
        """A realtime transcript for the captions, checked as it streams; `cut()` on a block."""
        watch = TranscriptWatch(self.words)
        deltas: asyncio.Queue[str | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for delta in transcript:
                    deltas.put_nowait(delta)
            finally:
                deltas.put_nowait(None)

        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(pump())
        waiting: deque[tuple[str, asyncio.Task[Blocked | None]]] = deque()
        next_delta: asyncio.Task[str | None] | None = None
        word_deadline: float | None = None
        ended = False

        def full_check(text: str) -> asyncio.Task[Blocked | None]:
            return asyncio.ensure_future(self.check(text))

        def stop(found: Blocked) -> None:
            cut()
            self.blocked(found, "realtime reply")

        try:
            while True:
                while waiting and waiting[0][1].done():
                    text, task = waiting.popleft()
                    if (found := task.result()) is not None:
                        stop(found)
                        return
                    yield text
                if ended and not waiting:
                    return
                if not ended and next_delta is None:
                    next_delta = asyncio.ensure_future(deltas.get())
                waits: list[asyncio.Future[Any]] = [t for t in (next_delta,) if t is not None]
                if waiting:
                    waits.append(waiting[0][1])
                timeout = None if word_deadline is None else max(0.0, word_deadline - loop.time())
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if next_delta is not None and next_delta.done():
                    delta, next_delta = next_delta.result(), None
                    if delta is None:
                        ended = True
                        word_deadline = None
                        if last := watch.end():
                            waiting.append((last, full_check(last)))
                        continue
                    step = watch.feed(delta)
                    if step.blocked is not None:
                        stop(step.blocked)
                        return
                    for text in step.sentences:
                        waiting.append((text, full_check(text)))
                    if not step.unsure:
                        word_deadline = None
                    elif word_deadline is None:
                        word_deadline = loop.time() + PARTIAL_WORD_WAIT_S
                elif word_deadline is not None and loop.time() >= word_deadline:
                    word_deadline = None
                    if (found := watch.word_done()) is not None:
                        stop(found)
                        return
        finally:
            reader.cancel()
            pending: list[asyncio.Future[Any]] = [reader, *(task for _, task in waiting)]
            if next_delta is not None:
                pending.append(next_delta)
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


_CHECKERS: dict[str, tuple[TextChecker, TextChecker]] = {}


def load_checkers(config: JobConfig) -> tuple[TextChecker, TextChecker]:
    """The offline checks, loaded once per process (word lists and a classifier: slow-ish):
    every check, and the ones that judge words (no classifier) for a streaming transcript."""
    from livestage.safety import TextSafety

    key = config.safety.model_dump_json()
    if key not in _CHECKERS:
        full = TextSafety.from_settings(config.safety)
        _CHECKERS[key] = (full, full.words_only())
    return _CHECKERS[key]


def load_checker(config: JobConfig) -> TextChecker:
    """Every offline check (see `load_checkers`)."""
    return load_checkers(config)[0]


def build_guard(config: JobConfig, room: str, backend: Callable[[], str]) -> OutputGuard | None:
    """The job's guard (None with `HOST_OUTPUT_CHECK=false`); OpenAI's endpoint is asked when
    `HOST_OUTPUT_OPENAI` is on and `OPENAI_API_KEY` is set."""
    settings = config.output
    if not settings.check:
        return None
    moderator: OpenAIModerator | None = None
    key = config.openai.api_key
    if settings.openai and key is not None and key.get_secret_value():
        moderator = OpenAIModerator(
            key.get_secret_value(),
            settings.openai_base_url or config.openai.base_url,
            config.safety.openai_model,
            settings.openai_timeout_s,
        )
    checker, words = load_checkers(config)
    return OutputGuard(
        checker, moderator, room=room, backend=backend, words=words, meter=config.meter
    )


def _split_item(item: Any) -> tuple[str, Any | None]:
    """An `llm_node` item's text, and what else it carries (None: nothing)."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, llm.ChatChunk):
        delta = item.delta
        if delta is None or not delta.content:
            return "", item
        text = delta.content
        if delta.tool_calls or delta.extra or item.usage is not None:
            return text, item.model_copy(
                update={"delta": delta.model_copy(update={"content": None})}
            )
        return text, None
    return "", item
