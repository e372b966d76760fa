"""`HostAgent`: the livekit-agents `Agent` of every host session, with the output checks in its
nodes (`output_guard.OutputGuard`).

- `llm_node` (the local voice's house brain, the pipeline's chat model): the model's text is
  gated a sentence at a time before it is split between the voice and the captions, so a blocked
  sentence is never synthesised, captioned or part of the turn's text.
- `transcription_node` (OpenAI Realtime, whose words and audio arrive together): the transcript
  is watched as it streams; a block cuts the turn (`SpeechHandle.interrupt`: the plugin cancels
  the response, the queued audio is cleared) and closes the message's audio at once
  (`realtime_audio_output_node` stops passing frames), and the blocked sentence is never
  captioned. Other voices' transcripts pass untouched: their text was gated upstream.

Without a guard (`HOST_OUTPUT_CHECK=false`) it is a plain `Agent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from livekit import rtc
from livekit.agents import Agent, llm
from livekit.agents.types import TimedString
from livekit.agents.voice import ModelSettings

from host_agent.output_guard import OutputGuard


class _AudioGate:
    """One realtime message's audio, closed the moment its transcript is cut."""

    def __init__(self) -> None:
        self.closed = False

    async def frames(self, audio: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
        async for frame in audio:
            if self.closed:
                return
            yield frame


class HostAgent(Agent):
    def __init__(self, *, instructions: str, guard: OutputGuard | None, realtime: bool) -> None:
        super().__init__(instructions=instructions)
        self.guard = guard
        self.realtime = realtime
        self._audio_gate: _AudioGate | None = None

    def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> Any:
        source = Agent.default.llm_node(self, chat_ctx, tools, model_settings)
        return source if self.guard is None else self.guard.gate(source)

    def realtime_audio_output_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> Any:
        source = Agent.default.realtime_audio_output_node(self, audio, model_settings)
        if self.guard is None:
            return source
        # called just before the same message's transcription_node, which takes the gate
        gate = self._audio_gate = _AudioGate()
        return gate.frames(source)

    def transcription_node(
        self, text: AsyncIterable[str | TimedString], model_settings: ModelSettings
    ) -> Any:
        source = Agent.default.transcription_node(self, text, model_settings)
        if self.guard is None or not self.realtime:
            return source
        gate, self._audio_gate = self._audio_gate or _AudioGate(), None
        speech = self.session.current_speech

        def cut() -> None:
            gate.closed = True
            if speech is not None and not speech.done():
                speech.interrupt(force=True)

        return self.guard.watch(source, cut)
