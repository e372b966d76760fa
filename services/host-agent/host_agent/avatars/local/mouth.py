"""From the audio the avatar is about to play to a mouth shape. Pure, no I/O.

    tracker = MouthTracker(sample_rate=24000, frame_s=0.04)
    shape = tracker.update(samples)   # int16 mono samples of one video frame's audio
    shape = tracker.update(None)      # a frame of silence

Per video frame:

1. loudness: the RMS level of the frame's samples in dBFS;
2. openness target: where that level sits below a slowly adapting speech peak (so a quiet voice
   still opens the mouth and a loud one does not pin it open), gated below a noise floor;
3. smoothing: an envelope with a fast attack and a slower release (a mouth opens quickly and
   closes a little more slowly, which reads as natural rather than flickery);
4. viseme: a spectral cue picks the mouth family: energy mostly below 900 Hz reads as rounded
   ("oo", "oh"), a lot above 2.5 kHz as spread ("ee", "s"), anything else as open ("ah"); a change
   must hold for two frames, so shapes do not flicker;
5. quantization into `MOUTH_LEVELS` levels of that family, level 0 being the closed mouth.

`speech` is a slower envelope of the same openness for the idle motion (nods, brows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .face import MOUTH_LEVELS, MouthShape, Viseme

_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class MouthConfig:
    gate_db: float = -52.0  # quieter than this is silence
    range_db: float = 24.0  # from peak - range (closed) ...
    headroom_db: float = 0.0  # ... to peak - headroom (fully open)
    curve: float = 1.4  # > 1: the mouth opens wide only on the loudest syllables
    peak_floor_db: float = -34.0  # the adaptive peak never sinks below (noise is not speech)
    peak_ceiling_db: float = -6.0
    peak_start_db: float = -20.0
    peak_decay_db_s: float = 4.0  # how fast the reference peak forgets a loud passage
    attack_s: float = 0.015
    release_s: float = 0.06
    speech_attack_s: float = 0.12
    speech_release_s: float = 0.5
    closed_below: float = 0.12  # openness under this draws the closed mouth
    round_low_share: float = 0.5  # "oh", "oo": energy low, little in the F2 band
    round_mid_share: float = 0.15
    wide_high_share: float = 0.55  # "ee", "s": energy high


def level_db(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (-inf for digital silence)."""
    if samples.size == 0:
        return -math.inf
    x = samples.astype(np.float64)
    rms = math.sqrt(float(np.mean(x * x))) / _FULL_SCALE
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def openness_target(db: float, peak_db: float, config: MouthConfig) -> float:
    """0..1: where `db` sits between closed (peak - range) and fully open (peak - headroom)."""
    if db < config.gate_db:
        return 0.0
    low = peak_db - config.range_db
    span = config.range_db - config.headroom_db
    return float(min(1.0, max(0.0, (db - low) / span)) ** config.curve)


def smooth(previous: float, target: float, dt: float, attack_s: float, release_s: float) -> float:
    """One step of an attack/release envelope follower."""
    tau = attack_s if target > previous else release_s
    alpha = 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0
    return previous + (target - previous) * alpha


def band_shares(samples: np.ndarray, sample_rate: int) -> tuple[float, float, float]:
    """Shares of spectral energy in 100-900 Hz, 900-2500 Hz and 2500-8000 Hz.

    The samples are pre-emphasised first (the usual +6 dB/octave of speech analysis), so the
    voice's strong low harmonics do not drown the formants that tell the vowels apart.
    """
    if samples.size < 16:
        return (0.0, 0.0, 0.0)
    x = samples.astype(np.float64)
    x[1:] -= 0.95 * x[:-1].copy()
    x *= np.hanning(samples.size)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / sample_rate)
    low = float(power[(freqs >= 100) & (freqs < 900)].sum())
    mid = float(power[(freqs >= 900) & (freqs < 2500)].sum())
    high = float(power[(freqs >= 2500) & (freqs < 8000)].sum())
    total = low + mid + high
    if total <= 0:
        return (0.0, 0.0, 0.0)
    return (low / total, mid / total, high / total)


def classify_viseme(samples: np.ndarray, sample_rate: int, config: MouthConfig) -> Viseme:
    """The mouth family a frame of voiced audio suggests."""
    low, mid, high = band_shares(samples, sample_rate)
    if high >= config.wide_high_share:
        return Viseme.WIDE
    if low >= config.round_low_share and mid <= config.round_mid_share:
        return Viseme.ROUND
    return Viseme.OPEN


def quantize(openness: float, viseme: Viseme, config: MouthConfig) -> MouthShape:
    """The drawn shape for a smoothed openness (0..1) in a viseme family."""
    if openness < config.closed_below or viseme is Viseme.REST:
        return MouthShape()
    u = (openness - config.closed_below) / (1.0 - config.closed_below)
    return MouthShape(viseme, min(MOUTH_LEVELS, 1 + int(u * MOUTH_LEVELS)))


class MouthTracker:
    """Turns consecutive frames of audio into mouth shapes (state: envelopes, peak, viseme)."""

    def __init__(self, sample_rate: int, frame_s: float, config: MouthConfig | None = None) -> None:
        if sample_rate <= 0 or frame_s <= 0:
            raise ValueError("sample_rate and frame_s must be positive")
        self.sample_rate = sample_rate
        self.frame_s = frame_s
        self.config = config or MouthConfig()
        self.reset()

    def reset(self) -> None:
        """Back to a closed mouth (after an interruption: the voice stopped mid-word)."""
        self.openness = 0.0
        self.speech = 0.0
        self.peak_db = self.config.peak_start_db
        self.viseme = Viseme.OPEN
        self._candidate = Viseme.OPEN
        self.shape = MouthShape()

    def update(self, samples: np.ndarray | None) -> MouthShape:
        """Advance one video frame; `samples` is that frame's int16 mono audio (None: silence)."""
        cfg, dt = self.config, self.frame_s
        db = -math.inf if samples is None else level_db(samples)
        if db > cfg.gate_db:
            decayed = self.peak_db - cfg.peak_decay_db_s * dt
            self.peak_db = min(cfg.peak_ceiling_db, max(cfg.peak_floor_db, db, decayed))
        target = openness_target(db, self.peak_db, cfg)
        self.openness = smooth(self.openness, target, dt, cfg.attack_s, cfg.release_s)
        self.speech = smooth(
            self.speech, self.openness, dt, cfg.speech_attack_s, cfg.speech_release_s
        )
        if samples is not None and target > 0:
            guess = classify_viseme(samples, self.sample_rate, cfg)
            # a new family must be heard twice running (or the mouth be nearly shut) to show
            if guess is self.viseme or guess is self._candidate or self.openness < 0.3:
                self.viseme = guess
            self._candidate = guess
        self.shape = quantize(self.openness, self.viseme, cfg)
        return self.shape
