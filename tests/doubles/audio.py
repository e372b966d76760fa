"""Speech-like audio for the doubles, and the containers the OpenAI speech API answers in.

    pcm = await speech("Hello there", sample_rate=24000)   # int16 mono numpy array
    data = encode(pcm, 24000, "mp3")                        # bytes of an MP3 file

``speech`` runs Debian's ``espeak-ng`` (``make bootstrap`` installs it) and resamples its
22.05 kHz output; ``voice="tone"`` makes a voiced buzz with syllable-like pauses instead (no
binary needed; it is what a double can fall back on when espeak-ng is missing and a test only
needs "audio that is clearly not silence"). Results are cached per (text, rate, voice).
"""

from __future__ import annotations

import asyncio
import io
import shutil
import wave
from typing import Literal

import av
import numpy as np
from livekit import rtc

Voice = Literal["espeak", "tone"]
ESPEAK_HINT = (
    "espeak-ng is not installed: `make bootstrap` installs it (Debian: apt-get install "
    "espeak-ng), or choose voice='tone' for a synthetic voiced buzz"
)
_cache: dict[tuple[str, int, str], np.ndarray] = {}


async def speech(text: str, *, sample_rate: int = 24000, voice: Voice = "espeak") -> np.ndarray:
    """``text`` spoken as int16 mono samples at ``sample_rate`` (cached)."""
    key = (text, sample_rate, voice)
    if key not in _cache:
        if voice == "tone":
            _cache[key] = voiced_tone(_spoken_seconds(text), sample_rate)
        else:
            _cache[key] = await _espeak(text, sample_rate)
    return _cache[key]


def _spoken_seconds(text: str) -> float:
    # about 2.9 words a second, the pace of espeak-ng's default voice
    return max(0.5, len(text.split()) / 2.9)


async def _espeak(text: str, sample_rate: int) -> np.ndarray:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise FileNotFoundError(ESPEAK_HINT)
    # "--" keeps a text starting with "-" from being read as an option
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--stdout",
        "-v",
        "en-us",
        "--",
        text or " ",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace')}")
    with wave.open(io.BytesIO(out)) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        raw = wav.readframes(wav.getnframes())
    samples = np.frombuffer(raw, dtype=np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0].copy()
    return resample(samples, rate, sample_rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """int16 mono ``samples`` from one rate to another (LiveKit's own resampler)."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    resampler = rtc.AudioResampler(
        from_rate, to_rate, num_channels=1, quality=rtc.AudioResamplerQuality.HIGH
    )
    frames = resampler.push(rtc.AudioFrame(samples.tobytes(), from_rate, 1, samples.size))
    frames += resampler.flush()
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


def voiced_tone(seconds: float, sample_rate: int, *, f0: float = 140.0) -> np.ndarray:
    """A vowel-ish buzz (harmonics of ``f0`` with a gentle pitch drift) cut into syllables."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    wave_ = sum(np.sin(k * phase) / k for k in range(1, 9))
    syllables = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 0.6  # ~7 syllables a second
    signal = wave_ * syllables
    peak = float(np.max(np.abs(signal))) or 1.0
    return (0.45 * 32767 * signal / peak).astype(np.int16)


def rms(samples: np.ndarray) -> float:
    """Root mean square of int16 samples (0 is silence)."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


# --------------------------------------------------------------------------------------------
# containers for /v1/audio/speech

CONTENT_TYPES = {
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}
_AV_FORMATS = {  # response_format -> (container, codec)
    "mp3": ("mp3", "libmp3lame"),
    "flac": ("flac", "flac"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
}


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """int16 mono ``samples`` as a file of ``fmt`` (one of ``CONTENT_TYPES``)."""
    if fmt == "pcm":
        return samples.astype(np.int16).tobytes()
    if fmt == "wav":
        buf = io.BytesIO()
        with wave.open(buf, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            wav.writeframes(samples.astype(np.int16).tobytes())
        return buf.getvalue()
    if fmt not in _AV_FORMATS:
        raise ValueError(f"unsupported audio format {fmt!r}; supported: {sorted(CONTENT_TYPES)}")
    container_name, codec = _AV_FORMATS[fmt]
    # opus only runs at 48 kHz; the others keep the rate they were asked for
    rate = 48000 if codec == "libopus" else sample_rate
    pcm = resample(samples, sample_rate, rate)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_name) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()
