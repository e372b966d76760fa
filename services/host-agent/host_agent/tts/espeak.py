"""espeak-ng as a `SpeechEngine`: through `libespeak-ng.so.1` (ctypes) with word timings, or
the `espeak-ng` binary when the library cannot be loaded (no word timings then).

Debian's `espeak-ng` package (installed by `make bootstrap`) brings both. The library keeps
global state, so every call goes through one process-wide lock; a sentence takes a few
milliseconds to synthesise, so that lock is never held long.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import re
import shutil
import subprocess
import threading
import wave
from typing import ClassVar

from livekit.agents import tts

from host_agent.settings import HostSettings
from host_agent.tts.base import (
    EngineTTS,
    LocalTTS,
    Synthesis,
    TTSUnavailable,
    WordTiming,
    estimated_words,
)

log = logging.getLogger(__name__)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakUnavailable(TTSUnavailable):
    """Neither libespeak-ng nor the espeak-ng binary is installed."""


class EspeakEngine:
    """One sentence at a time through espeak-ng; `sample_rate` is what espeak-ng reports."""

    name = "espeak-ng"
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _lib: ClassVar[ctypes.CDLL | None] = None
    _lib_rate: ClassVar[int] = 0

    def __init__(self, voice: str = "en-us", rate_wpm: int = 170, pitch: int = 45) -> None:
        self.voice, self.rate_wpm, self.pitch = voice, rate_wpm, pitch
        self._binary = shutil.which("espeak-ng")
        self._samples: list[bytes] = []
        self._events: list[tuple[int, int, int, int]] = []
        self._callback = _CALLBACK(self._on_synth)
        lib = self._load_library()
        if lib is not None:
            self.sample_rate = self._lib_rate
            self.word_timings = True
        elif self._binary:
            self.sample_rate = 22050
            self.word_timings = False
            log.warning("libespeak-ng.so.1 not loadable; using the espeak-ng binary")
        else:
            raise EspeakUnavailable(
                "espeak-ng is not installed: `apt-get install espeak-ng` (or `make bootstrap`), "
                "or set HOST_TTS=piper with HOST_PIPER_MODEL"
            )

    @classmethod
    def _load_library(cls) -> ctypes.CDLL | None:
        with cls._lock:
            if cls._lib is not None:
                return cls._lib
            name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                return None
            lib.espeak_Initialize.argtypes = [
                ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
            ]  # fmt: skip
            lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_Synth.argtypes = [
                ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
            ]  # fmt: skip
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
            if rate <= 0:
                log.warning("espeak_Initialize failed (%d); falling back to the binary", rate)
                return None
            cls._lib, cls._lib_rate = lib, rate
            return lib

    def _on_synth(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]
    ) -> int:
        if count > 0 and wav:
            self._samples.append(ctypes.string_at(wav, count * 2))
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_WORD:
                self._events.append(
                    (event.text_position, event.length, event.audio_position, event.sample)
                )
            index += 1
        return 0

    def synthesize(self, text: str) -> Synthesis:
        if not text.strip():
            return Synthesis(b"")
        if self._lib is None:
            return self._synthesize_binary(text)
        lib = self._lib
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            self._samples, self._events = [], []
            lib.espeak_SetSynthCallback(self._callback)
            lib.espeak_SetVoiceByName(self.voice.encode())
            lib.espeak_SetParameter(_PARAM_RATE, self.rate_wpm, 0)
            lib.espeak_SetParameter(_PARAM_PITCH, self.pitch, 0)
            status = lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            pcm, events = b"".join(self._samples), self._events
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text[:40]!r}")
        return Synthesis(pcm, self._words(text, events, len(pcm) / 2 / self.sample_rate))

    @staticmethod
    def _words(
        text: str, events: list[tuple[int, int, int, int]], duration_s: float
    ) -> tuple[WordTiming, ...]:
        """Timings for every whitespace-separated token of `text`, punctuation kept.

        espeak-ng reports a WORD event per spoken word but folds unstressed ones into their
        neighbour ("for the" is one event), so each token takes the event at or before it,
        and tokens sharing an event split its time by length.
        """
        tokens = [(match.start(), match.group()) for match in re.finditer(r"\S+", text)]
        if not tokens:
            return ()
        # in the order espeak spoke them; espeak also reports empty "words" at clause ends
        # (length 0, position 0 or back in the text), and one that goes back in the text or in
        # time would misplace every word after it
        marks: list[tuple[int, float]] = []
        for pos, length, audio_ms, _ in events:
            if length <= 0:
                continue
            mark = (max(pos - 1, 0), audio_ms / 1000)
            if not marks or (mark[0] > marks[-1][0] and mark[1] >= marks[-1][1]):
                marks.append(mark)
        if not marks:
            return estimated_words(text, duration_s)
        groups: dict[int, list[str]] = {}
        for start, token in tokens:
            index = max((i for i, (pos, _) in enumerate(marks) if pos <= start), default=0)
            groups.setdefault(index, []).append(token)
        words: list[WordTiming] = []
        ordered = sorted(groups)
        for n, index in enumerate(ordered):
            begin = marks[index][1]
            end = marks[ordered[n + 1]][1] if n + 1 < len(ordered) else duration_s
            group = groups[index]
            total = sum(len(token) for token in group)
            at = begin
            for token in group:
                length = (max(end, begin) - begin) * len(token) / total
                words.append(WordTiming(token, at, at + length))
                at += length
        return tuple(words)

    def _synthesize_binary(self, text: str) -> Synthesis:
        assert self._binary is not None
        completed = subprocess.run(
            [self._binary, "--stdout", "-v", self.voice, "-s", str(self.rate_wpm),
             "-p", str(self.pitch), text],
            capture_output=True, check=True, timeout=30,
        )  # fmt: skip
        with wave.open(io.BytesIO(completed.stdout)) as wav:
            self.sample_rate = wav.getframerate()
            return Synthesis(wav.readframes(wav.getnframes()))


class Espeak(LocalTTS):
    """`espeak`: espeak-ng (`HOST_ESPEAK_VOICE`, `HOST_ESPEAK_RATE_WPM`, `HOST_ESPEAK_PITCH`)."""

    name = "espeak"

    @classmethod
    def from_settings(cls, settings: HostSettings) -> tts.TTS:
        return EngineTTS(
            EspeakEngine(settings.espeak_voice, settings.espeak_rate_wpm, settings.espeak_pitch)
        )
