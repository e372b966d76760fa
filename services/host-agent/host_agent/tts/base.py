"""Local speech engines behind one livekit-agents `tts.TTS`.

A `SpeechEngine` turns one sentence into 16-bit mono PCM plus, when it can, word timings
(`WordTiming`, seconds from the start of that sentence). `EngineTTS` wraps any engine as a
livekit-agents TTS that streams: the text arriving from the model is split into sentences, each
sentence is synthesised in a worker thread as soon as it is complete, and its audio is pushed
together with word-aligned transcript pieces, so the captions that reach the page follow the
audio word by word (`AgentSession(use_tts_aligned_transcript=True)`).

Engines are picked by `HOST_TTS` through `host_agent.tts.TTS_ENGINES`: each is a `LocalTTS`
(a name and `from_settings`, building its `EngineTTS`) in the engine's own file. An engine that
cannot run here (not installed, no model) raises a `TTSUnavailable` saying what to do.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from livekit.agents import APIConnectOptions, tokenize, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, TimedString

from host_agent.settings import HostSettings


class TTSUnavailable(RuntimeError):
    """A local TTS engine cannot run here (not installed, no voice model): the message says how
    to get it."""


class LocalTTS(ABC):
    """A member of the `HOST_TTS` family: its name, and its livekit-agents TTS from the settings."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: HostSettings) -> tts.TTS:
        """The engine as a `tts.TTS` (raises `TTSUnavailable` when it cannot run here)."""


@dataclass(frozen=True)
class WordTiming:
    word: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Synthesis:
    pcm: bytes
    """16-bit signed little-endian mono samples at the engine's sample rate."""
    words: tuple[WordTiming, ...] = field(default_factory=tuple)

    def duration_s(self, sample_rate: int) -> float:
        return len(self.pcm) / 2 / sample_rate


class SpeechEngine(Protocol):
    """Something that speaks one sentence at a time, synchronously (called in a thread)."""

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Synthesis: ...


def estimated_words(text: str, duration_s: float) -> tuple[WordTiming, ...]:
    """Word timings spread over `duration_s` by word length, for engines that give none."""
    words = text.split()
    if not words or duration_s <= 0:
        return ()
    weights = [len(word) + 1 for word in words]
    total = sum(weights)
    timings: list[WordTiming] = []
    at = 0.0
    for word, weight in zip(words, weights, strict=True):
        length = duration_s * weight / total
        timings.append(WordTiming(word, at, at + length))
        at += length
    return tuple(timings)


class EngineTTS(tts.TTS):
    """A livekit-agents TTS over a local `SpeechEngine` (streaming, word-aligned)."""

    def __init__(self, engine: SpeechEngine) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
            sample_rate=engine.sample_rate,
            num_channels=1,
        )
        self.engine = engine

    @property
    def model(self) -> str:
        return self.engine.name

    @property
    def provider(self) -> str:
        return "livestage-local"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EngineChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return _EngineStream(tts=self, conn_options=conn_options)

    async def speak_sentence(self, text: str) -> Synthesis:
        return await asyncio.to_thread(self.engine.synthesize, text)


def _timed(words: tuple[WordTiming, ...], offset_s: float) -> list[TimedString]:
    return [
        TimedString(f"{w.word} ", start_time=offset_s + w.start_s, end_time=offset_s + w.end_s)
        for w in words
    ]


class _EngineChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: EngineTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._engine_tts = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._engine_tts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        result = await self._engine_tts.speak_sentence(self.input_text)
        output_emitter.push(result.pcm)
        output_emitter.flush()


class _EngineStream(tts.SynthesizeStream):
    def __init__(self, *, tts: EngineTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._engine_tts = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        sample_rate = self._engine_tts.sample_rate
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        output_emitter.start_segment(segment_id=utils.shortuuid())
        sentences = tokenize.blingfire.SentenceTokenizer(retain_format=True).stream()

        async def forward_input() -> None:
            async for data in self._input_ch:
                if isinstance(data, self._FlushSentinel):
                    sentences.flush()
                else:
                    sentences.push_text(data)
            sentences.end_input()

        async def speak() -> None:
            offset_s = 0.0
            async for event in sentences:
                text = event.token.strip()
                if not text:
                    continue
                self._mark_started()
                result = await self._engine_tts.speak_sentence(text)
                words = result.words or estimated_words(text, result.duration_s(sample_rate))
                output_emitter.push_timed_transcript(_timed(words, offset_s))
                output_emitter.push(result.pcm)
                offset_s += result.duration_s(sample_rate)
            output_emitter.end_segment()

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(speak())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await sentences.aclose()
            await utils.aio.cancel_and_wait(*tasks)
