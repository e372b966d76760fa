"""The `pipeline` voice: any OpenAI-compatible chat-completions endpoint, streamed into a TTS.

The words come from `livekit-plugins-openai`'s `LLM` at `HOST_PIPELINE_BASE_URL` (default a
local Ollama, `http://127.0.0.1:11434/v1`; vLLM, llama.cpp's server or OpenAI itself work the
same) with `HOST_PIPELINE_MODEL` and `HOST_PIPELINE_API_KEY`. The voice is an OpenAI-compatible
`/v1/audio/speech` endpoint when `HOST_PIPELINE_SPEECH_BASE_URL` is set (`openai.TTS`, raw PCM),
else the local TTS (`HOST_TTS`, espeak-ng by default) with word-timed captions.

Failures: the session's LLM and TTS calls use the host's short `APIConnectOptions`; the speech
plugin's own 30 s read timeout is bounded here too (`BoundedSpeechTTS`). An unrecoverable
error (a 401 at once, a 5xx or a timeout after the retries) reaches the job as the session's
`error` event and the job rebuilds the session on the local voice.
"""

from __future__ import annotations

import asyncio

import httpx
from livekit.agents import APIConnectOptions, APITimeoutError, tts
from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage, TTSModelUsage
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import openai as openai_plugin
from livekit.plugins.openai import tts as openai_tts

from host_agent.errors import BackendUnavailable
from host_agent.tts import TTS_ENGINES
from host_agent.usage import PIPELINE, SPEECH
from host_agent.voices.base import SessionParts, VoiceBackend

NO_KEY = "unused"
"""What the OpenAI client sends when the endpoint needs no key (it insists on one)."""


class BoundedSpeechTTS(openai_plugin.TTS):
    """`openai.TTS` whose every request ends after `conn_options.timeout` (the plugin's own read
    timeout is a fixed 30 s, far too long to notice a hung speech endpoint)."""

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _BoundedStream(tts=self, input_text=text, conn_options=conn_options)


class _BoundedStream(openai_tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        # a whole sentence of speech may take a few times the connect timeout to arrive
        bound = max(3 * self._conn_options.timeout, 5.0)
        try:
            async with asyncio.timeout(bound):
                await super()._run(output_emitter)
        except TimeoutError:
            raise APITimeoutError(f"no speech within {bound:.1f} s") from None


class PipelineVoice(VoiceBackend):
    name = "pipeline"
    production = True

    _speech: bool = False
    _parts: SessionParts | None = None

    def session_parts(self) -> SessionParts:
        settings = self.config.pipeline
        if not settings.base_url or not settings.model:
            raise BackendUnavailable("HOST_PIPELINE_BASE_URL and HOST_PIPELINE_MODEL must be set")
        options = self.config.connect_options
        timeout = httpx.Timeout(options.timeout, connect=options.timeout)
        key = settings.api_key.get_secret_value() if settings.api_key else NO_KEY
        model = openai_plugin.LLM(
            model=settings.model, base_url=settings.base_url, api_key=key, timeout=timeout
        )
        parts: dict[str, object] = {
            "conn_options": SessionConnectOptions(
                llm_conn_options=options, tts_conn_options=options
            )
        }
        speech: tts.TTS
        if settings.speech_base_url:
            speech_key = settings.speech_api_key or settings.api_key
            speech = BoundedSpeechTTS(
                model=settings.speech_model,
                voice=settings.speech_voice,
                base_url=settings.speech_base_url,
                api_key=speech_key.get_secret_value() if speech_key else NO_KEY,
                response_format="pcm",
            )
            self._speech = True
        else:
            speech = TTS_ENGINES.create(self.settings.tts, self.settings)
            parts["use_tts_aligned_transcript"] = True
        self._parts = SessionParts(llm=model, tts=speech, options=parts)
        return self._parts

    async def aclose(self) -> None:
        if self._parts is not None:
            await self._parts.llm.aclose()
            if self._parts.tts is not None:
                await self._parts.tts.aclose()

    def usage_backend(self, usage: ModelUsage) -> str | None:
        if isinstance(usage, LLMModelUsage):
            return PIPELINE
        if isinstance(usage, TTSModelUsage) and self._speech:
            return SPEECH
        return None
