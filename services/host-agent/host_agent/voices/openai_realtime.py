"""The `openai-realtime` voice: OpenAI Realtime through `livekit-plugins-openai`'s `RealtimeModel`.

Model, voice, key and base URL come from `OpenAISettings` (`OPENAI_REALTIME_MODEL`, default
`gpt-realtime-2`; `OPENAI_VOICE`, default `cedar`; `OPENAI_API_KEY`; `OPENAI_BASE_URL`, which
tests point at the local double). The model speaks itself: no TTS. Connection attempts use the
host's short `APIConnectOptions` (`HOST_CONNECT_TIMEOUT_S`, `HOST_CONNECT_RETRIES`,
`HOST_RETRY_INTERVAL_S`) so a bad key, a 5xx or a hung handshake ends in the session's
unrecoverable `error` event within seconds, and the job falls back to the local voice.

`say` asks the model to speak the words verbatim (a realtime model has no TTS of its own that
`session.say` could use, and mixing in another voice would sound like a second person). This is
the one place where words other than fixed text go into instructions: a `say` comes only from
the operator (`host.control`, sent by the edge's operator routes), never from viewers or pages.

Azure mode: the plugin switches to Azure's URLs and beta event names when `OPENAI_API_VERSION`
is in the environment; this backend refuses to start then rather than talk to the wrong API.
"""

from __future__ import annotations

import os

from livekit.agents import AgentSession
from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage
from livekit.agents.voice import SpeechHandle
from livekit.plugins.openai.realtime import RealtimeModel

from host_agent.errors import BackendUnavailable
from host_agent.usage import REALTIME
from host_agent.voices.base import SessionParts, VoiceBackend

SAY_INSTRUCTIONS = (
    "Say exactly the following words, verbatim, in your own voice, and nothing else: {text}"
)


class OpenAIRealtimeVoice(VoiceBackend):
    name = "openai-realtime"
    production = True
    speech_backend = REALTIME

    _model: RealtimeModel | None = None

    def session_parts(self) -> SessionParts:
        settings = self.config.openai
        if settings.api_key is None:
            raise BackendUnavailable("OPENAI_API_KEY is not set")
        if os.environ.get("OPENAI_API_VERSION"):
            raise BackendUnavailable(
                "OPENAI_API_VERSION is set, which switches the Realtime plugin to Azure mode; "
                "unset it to use OpenAI Realtime"
            )
        if self._model is None:
            self._model = RealtimeModel(
                model=settings.realtime_model,
                voice=settings.voice,
                base_url=settings.base_url,
                api_key=settings.api_key.get_secret_value(),
                conn_options=self.config.connect_options,
            )
        return SessionParts(llm=self._model)

    def say(self, session: AgentSession, text: str) -> SpeechHandle:
        return session.generate_reply(
            instructions=SAY_INSTRUCTIONS.format(text=text), allow_interruptions=True
        )

    def usage_backend(self, usage: ModelUsage) -> str | None:
        return REALTIME if isinstance(usage, LLMModelUsage) else None

    async def aclose(self) -> None:
        if self._model is not None:
            await self._model.aclose()
