"""Usage of the paid backends and its estimated spend. Pure: numbers in, numbers out.

The job feeds a `UsageLedger` what it learns (token counts from OpenAI Realtime's `response.done`
usage and from chat-completions usage, seconds of speech, avatar session seconds); each call
returns a `UsageDelta` (what to add to the metrics) priced with `Prices` (from `CostSettings`,
estimates, not a bill). `summary()` is the job's `usage` in its `ended` event.

Backend names are the metric attribute `backend`, a small closed set:

- `openai-realtime`: text and audio tokens in and out (cached input apart) and the seconds it
  spoke; priced per million tokens of each kind;
- `pipeline`: chat-completions prompt and completion tokens; per million tokens in and out;
- `pipeline-speech`: seconds of speech from an OpenAI-compatible `/v1/audio/speech`; per minute;
- `anam`: avatar session seconds; per minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from host_agent.settings import CostSettings
from livestage.settings import default_of

REALTIME = "openai-realtime"
PIPELINE = "pipeline"
SPEECH = "pipeline-speech"
ANAM = "anam"
MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """USD prices (estimates) of the paid backends: part of `CostSettings` (`HOST_COST_*`),
    which owns their defaults; the job builds it with `livestage.settings.derive`."""

    realtime_text_input_per_mtok: float = default_of(CostSettings, "realtime_text_input_per_mtok")
    realtime_audio_input_per_mtok: float = default_of(CostSettings, "realtime_audio_input_per_mtok")
    realtime_cached_input_per_mtok: float = default_of(
        CostSettings, "realtime_cached_input_per_mtok"
    )
    realtime_text_output_per_mtok: float = default_of(CostSettings, "realtime_text_output_per_mtok")
    realtime_audio_output_per_mtok: float = default_of(
        CostSettings, "realtime_audio_output_per_mtok"
    )
    pipeline_input_per_mtok: float = default_of(CostSettings, "pipeline_input_per_mtok")
    pipeline_output_per_mtok: float = default_of(CostSettings, "pipeline_output_per_mtok")
    speech_per_minute: float = default_of(CostSettings, "speech_per_minute")
    anam_per_minute: float = default_of(CostSettings, "anam_per_minute")


@dataclass(frozen=True)
class Tokens:
    """Tokens of one response (or a sum of them). Cached input is part of the input counts."""

    input_text: int = 0
    input_audio: int = 0
    cached_text: int = 0
    cached_audio: int = 0
    output_text: int = 0
    output_audio: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(
            self.input_text + other.input_text,
            self.input_audio + other.input_audio,
            self.cached_text + other.cached_text,
            self.cached_audio + other.cached_audio,
            self.output_text + other.output_text,
            self.output_audio + other.output_audio,
        )

    def by_kind(self) -> dict[tuple[str, str], int]:
        """(direction, modality) -> count, zeros left out."""
        counts = {
            ("input", "text"): self.input_text,
            ("input", "audio"): self.input_audio,
            ("output", "text"): self.output_text,
            ("output", "audio"): self.output_audio,
        }
        return {kind: count for kind, count in counts.items() if count > 0}

    @property
    def empty(self) -> bool:
        return not self.by_kind()


def price_tokens(backend: str, tokens: Tokens, prices: Prices) -> float:
    """Estimated USD for `tokens` used on `backend`."""
    if backend == REALTIME:
        cached_text = min(tokens.cached_text, tokens.input_text)
        cached_audio = min(tokens.cached_audio, tokens.input_audio)
        usd = (
            (tokens.input_text - cached_text) * prices.realtime_text_input_per_mtok
            + (tokens.input_audio - cached_audio) * prices.realtime_audio_input_per_mtok
            + (cached_text + cached_audio) * prices.realtime_cached_input_per_mtok
            + tokens.output_text * prices.realtime_text_output_per_mtok
            + tokens.output_audio * prices.realtime_audio_output_per_mtok
        )
        return usd / MILLION
    if backend == PIPELINE:
        usd = (tokens.input_text + tokens.input_audio) * prices.pipeline_input_per_mtok + (
            tokens.output_text + tokens.output_audio
        ) * prices.pipeline_output_per_mtok
        return usd / MILLION
    return 0.0  # speech and avatars are priced by time


def price_seconds(backend: str, seconds: float, prices: Prices) -> float:
    """Estimated USD for `seconds` of speech or avatar time on `backend`."""
    if backend == SPEECH:
        return seconds / 60 * prices.speech_per_minute
    if backend == ANAM:
        return seconds / 60 * prices.anam_per_minute
    return 0.0  # realtime audio is priced by its tokens


@dataclass(frozen=True)
class UsageDelta:
    """What one update adds (record these in the metrics)."""

    backend: str
    tokens: Tokens = field(default_factory=Tokens)
    audio_s: float = 0.0
    avatar_s: float = 0.0
    spend_usd: float = 0.0

    @property
    def empty(self) -> bool:
        return self.tokens.empty and not self.audio_s and not self.avatar_s and not self.spend_usd


@dataclass
class _Totals:
    tokens: Tokens = field(default_factory=Tokens)
    audio_s: float = 0.0
    avatar_s: float = 0.0
    spend_usd: float = 0.0


class UsageLedger:
    """Everything one job used, per backend, with its estimated spend."""

    def __init__(self, prices: Prices) -> None:
        self.prices = prices
        self._totals: dict[str, _Totals] = {}

    def _add(self, delta: UsageDelta) -> UsageDelta:
        if not delta.empty:
            totals = self._totals.setdefault(delta.backend, _Totals())
            totals.tokens = totals.tokens + delta.tokens
            totals.audio_s += delta.audio_s
            totals.avatar_s += delta.avatar_s
            totals.spend_usd += delta.spend_usd
        return delta

    def tokens(self, backend: str, tokens: Tokens) -> UsageDelta:
        return self._add(
            UsageDelta(backend, tokens=tokens, spend_usd=price_tokens(backend, tokens, self.prices))
        )

    def audio(self, backend: str, seconds: float) -> UsageDelta:
        seconds = max(0.0, seconds)
        return self._add(
            UsageDelta(
                backend, audio_s=seconds, spend_usd=price_seconds(backend, seconds, self.prices)
            )
        )

    def avatar(self, backend: str, seconds: float) -> UsageDelta:
        seconds = max(0.0, seconds)
        return self._add(
            UsageDelta(
                backend, avatar_s=seconds, spend_usd=price_seconds(backend, seconds, self.prices)
            )
        )

    @property
    def spend_usd(self) -> float:
        return sum(totals.spend_usd for totals in self._totals.values())

    def tokens_of(self, backend: str) -> Tokens:
        totals = self._totals.get(backend)
        return totals.tokens if totals else Tokens()

    def summary(self) -> dict[str, float]:
        """Flat `usage` for the job's `ended` event; zeros left out, spend rounded to 1e-6."""
        out: dict[str, float] = {}
        for backend, totals in sorted(self._totals.items()):
            for (direction, modality), count in totals.tokens.by_kind().items():
                out[f"tokens.{backend}.{direction}.{modality}"] = float(count)
            if totals.audio_s:
                out[f"audio_s.{backend}"] = round(totals.audio_s, 3)
            if totals.avatar_s:
                out[f"avatar_s.{backend}"] = round(totals.avatar_s, 3)
            if totals.spend_usd:
                out[f"spend_usd.{backend}"] = round(totals.spend_usd, 6)
        if self._totals:
            out["spend_usd"] = round(self.spend_usd, 6)
        return out


def over_cap(spent_today_usd: float, cap_usd: float) -> bool:
    """Whether a room's spend today reached its daily cap (a cap of 0 means none)."""
    return cap_usd > 0 and spent_today_usd >= cap_usd
