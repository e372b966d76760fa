"""Piper as a `SpeechEngine` (optional: `piper-tts` is GPL-3.0, so never a default dependency).

Install it yourself (`uv pip install piper-tts`) and point `HOST_PIPER_MODEL` at a voice model
(`.onnx` with its `.onnx.json` beside it), then set `HOST_TTS=piper`. Piper gives no word
timings, so captions are spread over each sentence by word length.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from livekit.agents import tts

from host_agent.settings import HostSettings
from host_agent.tts.base import EngineTTS, LocalTTS, Synthesis, TTSUnavailable


class PiperUnavailable(TTSUnavailable):
    """piper-tts is not installed or the voice model is missing."""


class PiperEngine:
    name = "piper"

    def __init__(self, model_path: str) -> None:
        if not model_path:
            raise PiperUnavailable("HOST_TTS=piper needs HOST_PIPER_MODEL (a voice .onnx file)")
        path = Path(model_path)
        if not path.is_file():
            raise PiperUnavailable(f"HOST_PIPER_MODEL={model_path}: no such file")
        try:
            piper: Any = importlib.import_module("piper")
        except ImportError:
            raise PiperUnavailable(
                "HOST_TTS=piper needs the piper-tts package (GPL-3.0, not installed by default): "
                "`uv pip install piper-tts`"
            ) from None
        self._voice = piper.PiperVoice.load(str(path))
        self.sample_rate = int(self._voice.config.sample_rate)

    def synthesize(self, text: str) -> Synthesis:
        chunks = [chunk.audio_int16_bytes for chunk in self._voice.synthesize(text)]
        return Synthesis(b"".join(chunks))


class Piper(LocalTTS):
    """`piper`: a Piper voice model (`HOST_PIPER_MODEL`; the piper-tts package, GPL-3.0)."""

    name = "piper"

    @classmethod
    def from_settings(cls, settings: HostSettings) -> tts.TTS:
        return EngineTTS(PiperEngine(settings.piper_model))
