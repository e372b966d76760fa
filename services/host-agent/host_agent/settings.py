"""Settings of the host agent (`HOST_*`), beside the shared LiveKit, NATS, OpenAI and Anam ones.

Backends are named here and looked up in the registries of `host_agent.voices`,
`host_agent.avatars` and `host_agent.tts`; an empty `HOST_VOICE` / `HOST_AVATAR` means "choose
from the keys": the production backend when its key is set and it is installed, else the local
one (each family's `auto` rule: `voices.auto_voice`, `avatars.auto_avatar`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings

from livestage.settings import Port, settings_config

PERSONAS_DIR = Path(__file__).resolve().parent / "personas"
DEFAULT_PERSONA = PERSONAS_DIR / "nova.yaml"


class HostSettings(BaseSettings):
    """The speaking host: backends, persona, job timing, the brain's rules, the worker."""

    model_config = settings_config("HOST_")

    # --- backends ---------------------------------------------------------------------------
    voice: str = Field(
        "",
        description="Voice backend (local, or a production one when installed); empty: "
        "openai-realtime with OPENAI_API_KEY, else local.",
    )
    avatar: str = Field(
        "",
        description="Avatar backend (none, local, anam when installed); empty: anam with "
        "ANAM_API_KEY, else local when installed, else none.",
    )
    tts: str = Field(
        "espeak",
        description="Local text-to-speech engine for the local voice: espeak (espeak-ng, no "
        "download) or piper (needs the piper-tts package and HOST_PIPER_MODEL; GPL-3.0).",
    )
    espeak_voice: str = Field("en-us", description="espeak-ng voice name, e.g. en-us, en-gb.")
    espeak_rate_wpm: int = Field(
        170, ge=80, le=450, description="espeak-ng speaking rate (words per minute)."
    )
    espeak_pitch: int = Field(45, ge=0, le=99, description="espeak-ng base pitch (0-99).")
    piper_model: str = Field(
        "", description="Path of a Piper voice model (.onnx, its .onnx.json beside it)."
    )

    # --- production backends: how fast a failing one gives way to the local one ------------
    connect_timeout_s: PositiveFloat = Field(
        3.0,
        description="Each connection attempt and request to a paid voice backend (OpenAI "
        "Realtime, a chat-completions endpoint, a speech endpoint, Anam) times out after this "
        "many seconds.",
    )
    connect_retries: int = Field(
        1,
        ge=0,
        le=5,
        description="Retries of a failed connection to a paid backend before the host falls "
        "back to the local one.",
    )
    retry_interval_s: NonNegativeFloat = Field(
        0.5, description="Seconds between those retries (the first one comes at once)."
    )
    remote_avatar_start_timeout_s: PositiveFloat = Field(
        8.0,
        description="How long starting a remote avatar (Anam's session API) may take before "
        "the host uses the local avatar (the plugin itself would wait forever on a hung API).",
    )
    remote_avatar_join_timeout_s: PositiveFloat = Field(
        15.0,
        description="How long a remote avatar may take to join the room and publish its video "
        "before the host uses the local avatar.",
    )

    # --- persona ----------------------------------------------------------------------------
    persona_file: Path = Field(
        DEFAULT_PERSONA,
        description="Persona file (YAML or TOML: name, voice_style, instructions, greeting).",
    )
    persona_dir: Path = Field(
        PERSONAS_DIR,
        description="Folder the `persona` control command looks in (<name>.yaml / .toml).",
    )

    # --- the job ----------------------------------------------------------------------------
    viewer_wait_s: PositiveFloat = Field(
        25.0, description="How long a new job waits for a first viewer (seconds)."
    )
    empty_grace_s: PositiveFloat = Field(
        60.0, description="How long a live job stays with no viewer before it ends (s)."
    )
    greet: bool = Field(True, description="Say a short greeting when the first viewer arrives.")
    pause_release_s: NonNegativeFloat = Field(
        60.0,
        description="A pause held this long closes the paid sessions (the voice's session, the "
        "avatar's) and keeps the job; resume (or a say) builds them again (s; 0: never).",
    )

    # --- the brain --------------------------------------------------------------------------
    batch_window_s: NonNegativeFloat = Field(
        0.3,
        description="After the first fresh comment, how long to gather others before answering.",
    )
    max_comments: int = Field(2, ge=1, le=4, description="Comments answered in one turn at most.")
    stale_after_s: PositiveFloat = Field(
        45.0, description="A comment older than this is never answered (seconds)."
    )
    idle_after_s: PositiveFloat = Field(
        20.0, description="Quiet spell before an idle monologue about the visual (s)."
    )
    memory_s: PositiveFloat = Field(
        300.0, description="How long recent chat and talk stay in the host's memory (s)."
    )
    recent_chat_limit: int = Field(
        12, ge=0, le=100, description="Recent chat lines given to the model as context."
    )
    recent_talk_limit: int = Field(
        6, ge=0, le=50, description="Recent host turns given to the model as context."
    )

    # --- the worker -------------------------------------------------------------------------
    executor: Literal["process", "thread"] = Field(
        "process",
        description="Job executor: process (production: one process per job) or thread.",
    )
    max_jobs: int = Field(
        4,
        ge=1,
        le=64,
        description="Rooms one worker hosts at once; it refuses dispatches beyond (its load).",
    )
    idle_processes: int = Field(
        1, ge=0, le=8, description="Warm job processes kept ready (process executor)."
    )
    health_port: Port = Field(8081, description="Worker health HTTP port (0: any free port).")
    job_liveness_ttl_s: PositiveFloat = Field(
        4.0,
        description="A running job's liveness key (NATS KV `host-jobs`) lapses this long after its "
        "worker's last write; the other workers then report the job crashed, and the edge gives "
        "its show a new host at once (seconds).",
    )
    job_liveness_renew_s: PositiveFloat = Field(
        1.0,
        description="How often a worker writes the liveness keys of its running jobs (seconds; "
        "below HOST_JOB_LIVENESS_TTL_S).",
    )
    drain_timeout_s: NonNegativeInt = Field(
        20,
        description="On SIGTERM the worker drains: it takes no new job, and each running show "
        "finishes the turn it is speaking (this long at most, less 3 s to end the job), then ends "
        "(`shutdown`) and goes to another worker. The stop watchdog allows this plus "
        "LIVESTAGE_STOP_TIMEOUT_S, so a supervisor's grace period must be longer than both "
        "(0: cut running shows at once).",
    )


class LocalAvatarSettings(BaseSettings):
    """The local drawn avatar (`avatar-host`) that the host uses when there is no Anam key."""

    model_config = settings_config("HOST_AVATAR_")

    width: int = Field(
        512, ge=64, le=1920, description="Width of the local avatar's video (pixels, even)."
    )
    height: int = Field(
        512, ge=64, le=1920, description="Height of the local avatar's video (pixels, even)."
    )
    fps: float = Field(
        25.0, ge=5, le=60, description="Frame rate of the local avatar's video (frames/second)."
    )
    mouth_lag_ms: float = Field(
        0.0,
        ge=0,
        le=500,
        description="How far the local avatar's lips trail its voice as sent (ms), to even out "
        "the send queues; `make bench B=avatar` measures the resulting offset.",
    )
    background: str = Field(
        "00FF00",
        description="Background colour (RRGGBB hex, `#` optional) of the local avatar, keyed "
        "out by the pages; change it only together with the pages' key colour.",
    )

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be even (the video is encoded as I420)")
        return value

    @field_validator("background")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        text = value.strip()
        digits = text.removeprefix("#")
        if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("must be an RRGGBB hex colour, e.g. 00FF00")
        return digits.upper()

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        d = self.background
        return (int(d[0:2], 16), int(d[2:4], 16), int(d[4:6], 16))


class PipelineSettings(BaseSettings):
    """The `pipeline` voice: any OpenAI-compatible chat endpoint plus a text-to-speech."""

    model_config = settings_config("HOST_PIPELINE_")

    base_url: str = Field(
        "http://127.0.0.1:11434/v1",
        description="Base URL of an OpenAI-compatible chat-completions API (default: a local "
        "Ollama; vLLM, llama.cpp's server or https://api.openai.com/v1 work the same).",
    )
    model: str = Field("llama3.2", description="Chat model name at that endpoint.")
    api_key: SecretStr | None = Field(
        None, description="Key for that endpoint (empty: none; a local Ollama needs none)."
    )
    speech_base_url: str = Field(
        "",
        description="Base URL of an OpenAI-compatible /v1/audio/speech API for the pipeline's "
        "voice (e.g. https://api.openai.com/v1); empty: the local TTS (HOST_TTS).",
    )
    speech_model: str = Field("gpt-4o-mini-tts", description="Speech model at that endpoint.")
    speech_voice: str = Field("ash", description="Voice name at that speech endpoint.")
    speech_api_key: SecretStr | None = Field(
        None, description="Key for the speech endpoint (empty: HOST_PIPELINE_API_KEY)."
    )


class OutputCheckSettings(BaseSettings):
    """What the host says is checked before it is heard (the chat's offline checks, OpenAI's)."""

    model_config = settings_config("HOST_OUTPUT_")

    check: bool = Field(
        True,
        description="Check every sentence the host is about to say (word lists, classifier, "
        "confusable spellings; OpenAI's moderation endpoint with a key): a blocked sentence is "
        "never spoken, captioned or published (OpenAI Realtime: the turn is cut).",
    )
    openai: bool = Field(
        True,
        description="Also ask OpenAI's moderation endpoint about each sentence when "
        "OPENAI_API_KEY is set.",
    )
    openai_base_url: str = Field(
        "",
        description="Base URL of that moderation endpoint (model: MODERATION_OPENAI_MODEL); "
        "empty: OPENAI_BASE_URL.",
    )
    openai_timeout_s: PositiveFloat = Field(
        1.5,
        description="How long a sentence waits for OpenAI's verdict (seconds); on a timeout or "
        "an error the offline checks' verdict stands.",
    )


def _realtime_price(default: float, tokens: str) -> Any:
    """A CostSettings field: OpenAI Realtime's list price of one kind of token."""
    return Field(
        default, description=f"OpenAI Realtime: USD per million {tokens} tokens (estimate)."
    )


def _pipeline_price(tokens: str) -> Any:
    """A CostSettings field: the pipeline chat endpoint's price of its input or output tokens."""
    return Field(
        0.0,
        description=f"Pipeline chat endpoint: USD per million {tokens} tokens "
        "(0 for a local model).",
    )


class CostSettings(BaseSettings):
    """Estimated spend of the paid backends, and the daily cap per room (estimates, not a bill).

    Defaults are the published list prices when this was written (OpenAI gpt-realtime per
    million tokens; OpenAI gpt-4o-mini-tts per minute; an approximate Anam per-minute rate).
    Check your own prices and set them here; the host only ever estimates.
    """

    model_config = settings_config("HOST_COST_")

    daily_cap_usd: NonNegativeFloat = Field(
        20.0,
        description="Estimated spend per room per UTC day (counted in Redis, across jobs) after "
        "which the host switches to the local voice and avatar; 0: no cap.",
    )
    realtime_text_input_per_mtok: NonNegativeFloat = _realtime_price(4.0, "text input")
    realtime_audio_input_per_mtok: NonNegativeFloat = _realtime_price(32.0, "audio input")
    realtime_cached_input_per_mtok: NonNegativeFloat = _realtime_price(0.4, "cached input")
    realtime_text_output_per_mtok: NonNegativeFloat = _realtime_price(16.0, "text output")
    realtime_audio_output_per_mtok: NonNegativeFloat = _realtime_price(64.0, "audio output")
    pipeline_input_per_mtok: NonNegativeFloat = _pipeline_price("input")
    pipeline_output_per_mtok: NonNegativeFloat = _pipeline_price("output")
    speech_per_minute: NonNegativeFloat = Field(
        0.015,
        description="Pipeline speech endpoint: USD per minute of speech (estimate).",
    )
    anam_per_minute: NonNegativeFloat = Field(
        0.15, description="Anam: USD per avatar session minute (estimate; see your plan)."
    )
    check_interval_s: PositiveFloat = Field(
        5.0,
        description="How often running avatar minutes are counted and the cap is checked (s).",
    )
