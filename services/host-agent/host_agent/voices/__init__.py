"""Voice backends, chosen by `HOST_VOICE` (see `host_agent.settings.resolve_voice`).

Each is a `VoiceBackend` subclass in a file beside `base.py`, registered here by name.
"""

from __future__ import annotations

from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona
from host_agent.settings import HostSettings
from host_agent.voices.base import VoiceBackend
from host_agent.voices.local import LocalVoice

REGISTRY: dict[str, type[VoiceBackend]] = {LocalVoice.name: LocalVoice}


def create_voice(name: str, settings: HostSettings, persona: Persona) -> VoiceBackend:
    try:
        backend = REGISTRY[name]
    except KeyError:
        raise BackendUnavailable(
            f"voice backend {name!r} is not available; choose one of {sorted(REGISTRY)}"
        ) from None
    return backend(settings, persona)
