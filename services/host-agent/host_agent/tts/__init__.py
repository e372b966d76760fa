"""Local text-to-speech engines, chosen by `HOST_TTS`: a registry of factories.

Each factory returns a livekit-agents `tts.TTS`. Adding an engine means adding a file beside
`espeak.py` and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

from livekit.agents import tts

from host_agent.settings import HostSettings
from host_agent.tts.base import EngineTTS


def _espeak(settings: HostSettings) -> tts.TTS:
    from host_agent.tts.espeak import EspeakEngine

    return EngineTTS(
        EspeakEngine(settings.espeak_voice, settings.espeak_rate_wpm, settings.espeak_pitch)
    )


def _piper(settings: HostSettings) -> tts.TTS:
    from host_agent.tts.piper import PiperEngine

    return EngineTTS(PiperEngine(settings.piper_model))


REGISTRY: dict[str, Callable[[HostSettings], tts.TTS]] = {"espeak": _espeak, "piper": _piper}


def create_tts(settings: HostSettings) -> tts.TTS:
    try:
        factory = REGISTRY[settings.tts]
    except KeyError:
        raise ValueError(
            f"HOST_TTS={settings.tts!r} is not a local TTS engine; choose one of {sorted(REGISTRY)}"
        ) from None
    return factory(settings)
