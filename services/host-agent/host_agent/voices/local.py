"""The `local` voice: the house brain (deterministic templates, `host_agent.house`) as a
livekit-agents `llm.LLM`, speaking through a local TTS (`HOST_TTS`: espeak-ng by default).

No network, no keys, no download. The house brain is a stand-in for a language model: it answers
with varied templates built from the chosen comments' authors and words and the screen
context; it does not understand them.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import APIConnectOptions, llm, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from host_agent.house import HouseWriter
from host_agent.persona import Persona
from host_agent.tts import TTS_ENGINES
from host_agent.voices.base import SessionParts, VoiceBackend, plan_of

WORDS_PER_CHUNK = 4


class HouseLLM(llm.LLM):
    """An `llm.LLM` whose answers come from the house brain's templates."""

    def __init__(self, persona: Persona) -> None:
        super().__init__()
        self.writer = HouseWriter(persona)

    @property
    def model(self) -> str:
        return "house-brain"

    @property
    def provider(self) -> str:
        return "livestage-local"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _HouseStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _HouseStream(llm.LLMStream):
    def __init__(self, house: HouseLLM, **kwargs: Any) -> None:
        super().__init__(house, **kwargs)
        self._house = house

    async def _run(self) -> None:
        plan = plan_of(self._chat_ctx)
        if plan is not None:
            text = self._house.writer.write(plan)
        else:
            text = "Thanks for being here. Say hi in the chat!"
        request_id = utils.shortuuid("house_")
        words = text.split(" ")
        for start in range(0, len(words), WORDS_PER_CHUNK):
            piece = " ".join(words[start : start + WORDS_PER_CHUNK])
            if start + WORDS_PER_CHUNK < len(words):
                piece += " "
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece))
            )


class LocalVoice(VoiceBackend):
    name = "local"

    def session_parts(self) -> SessionParts:
        self._llm = HouseLLM(self.persona)
        return SessionParts(
            llm=self._llm,
            tts=TTS_ENGINES.create(self.settings.tts, self.settings),
            options={"use_tts_aligned_transcript": True},
        )

    def set_persona(self, persona: Persona) -> None:
        super().set_persona(persona)
        if getattr(self, "_llm", None) is not None:
            self._llm.writer.persona = persona
