"""Voice backends, one file each behind `base.VoiceBackend`, chosen by name (`HOST_VOICE`).

| name | speaks with | production | needs |
|---|---|---|---|
| local | the house brain's templates, local TTS (`HOST_TTS`) | no | nothing |
| openai-realtime | OpenAI Realtime (speech to speech) | yes | `OPENAI_API_KEY` |
| pipeline | chat completions into a speech endpoint or the local TTS | yes | `HOST_PIPELINE_*` |

`auto` (an empty `HOST_VOICE`): openai-realtime with `OPENAI_API_KEY`, else local
(`VOICES.resolve("auto", openai_key=...)`, the rule in `auto_voice`).

    voice = VOICES.create(name, config, persona)   # VoiceBackend.from_settings(config, persona)
    parts = voice.session_parts()                  # BackendUnavailable when a key is missing

An unknown name raises `UnknownBackend` (every valid name in the message). Adding a voice: a
file beside `local.py` with a `VoiceBackend` subclass, and its class in `VOICES`.
"""

from __future__ import annotations

from collections.abc import Collection

from host_agent.voices.base import VoiceBackend
from host_agent.voices.local import LocalVoice
from host_agent.voices.openai_realtime import OpenAIRealtimeVoice
from host_agent.voices.pipeline import PipelineVoice
from livestage.registry import Registry


def auto_voice(*, openai_key: bool, available: Collection[str]) -> str:
    """The voice for `auto`: openai-realtime with a key when installed, else local."""
    if openai_key and OpenAIRealtimeVoice.name in available:
        return OpenAIRealtimeVoice.name
    return LocalVoice.name


VOICES: Registry[VoiceBackend] = Registry(
    "voice",
    setting="HOST_VOICE",
    members=(LocalVoice, OpenAIRealtimeVoice, PipelineVoice),
    auto=lambda *, openai_key: auto_voice(openai_key=openai_key, available=VOICES.names()),
)

__all__ = ["VOICES", "VoiceBackend", "auto_voice"]
