"""Settings of the host-agent service (prefix `HOST_`)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalAvatarSettings(BaseSettings):
    """The local drawn avatar (`avatar-host`) that the host uses when there is no Anam key."""

    model_config = SettingsConfigDict(
        env_prefix="HOST_AVATAR_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

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
