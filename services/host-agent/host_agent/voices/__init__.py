"""Voice backends, chosen by `HOST_VOICE` (see `host_agent.settings.resolve_voice`).

Each is a `VoiceBackend` subclass in a file beside `base.py`, registered here by name.
"""

from __future__ import annotations

from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona
from host_agent.voices.base import VoiceBackend
from host_agent.voices.local import LocalVoice
from host_agent.voices.openai_realtime import OpenAIRealtimeVoice
from host_agent.voices.pipeline import PipelineVoice

REGISTRY: dict[str, type[VoiceBackend]] = {
    backend.name: backend for backend in (LocalVoice, OpenAIRealtimeVoice, PipelineVoice)
}


def create_voice(name: str, config: JobConfig, persona: Persona) -> VoiceBackend:
    try:
        backend = REGISTRY[name]
    except KeyError:
        raise BackendUnavailable(
            f"voice backend {name!r} is not available; choose one of {sorted(REGISTRY)}"
        ) from None
    return backend(config, persona)
