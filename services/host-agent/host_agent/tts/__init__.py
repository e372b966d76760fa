"""Local text-to-speech engines for the local voice (and a pipeline without a speech endpoint),
one file each behind `base.LocalTTS`, chosen by name (`HOST_TTS`) in `TTS_ENGINES`.

| name | engine | word timings | needs |
|---|---|---|---|
| espeak | espeak-ng (libespeak-ng, else its binary) | yes (library) | the espeak-ng package |
| piper | a Piper voice model | estimated | `piper-tts` (GPL-3.0) and `HOST_PIPER_MODEL` |

    speech = TTS_ENGINES.create(settings.tts, settings)   # a livekit-agents tts.TTS

An unknown name raises `UnknownBackend` (every valid name in the message); an engine that cannot
run here raises `TTSUnavailable` saying how to get it. Adding an engine: a file beside
`espeak.py` with a `LocalTTS` subclass, and its class in `TTS_ENGINES`.
"""

from __future__ import annotations

from host_agent.tts.base import LocalTTS, TTSUnavailable
from host_agent.tts.espeak import Espeak
from host_agent.tts.piper import Piper
from livestage.registry import Registry

TTS_ENGINES: Registry[LocalTTS] = Registry(
    "local TTS engine", setting="HOST_TTS", members=(Espeak, Piper)
)

__all__ = ["TTS_ENGINES", "LocalTTS", "TTSUnavailable"]
