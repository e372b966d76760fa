"""Settings of the edge (`TOKEN_*`), beside the shared LiveKit, NATS and Redis settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"


class EdgeSettings(BaseSettings):
    """HTTP edge: listen address, viewer profile rules, rate limits, proxies, pages."""

    model_config = SettingsConfigDict(
        env_prefix="TOKEN_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    host: str = Field("127.0.0.1", description="Address the edge listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the edge listens on.")
    avatars: list[str] = Field(
        default=["fox", "owl", "cat", "robot", "panda", "frog"],
        description="Avatar ids a viewer may pick (JSON list).",
    )
    token_ttl_s: int = Field(7200, gt=0, description="Lifetime of a viewer token (seconds).")
    trusted_proxies: list[str] = Field(
        default=[],
        description="CIDRs of reverse proxies whose X-Forwarded-For is believed (JSON list); "
        "empty means the socket peer is the client.",
    )
    rate_token_per_ip: str = Field("20/minute", description="Token requests per client IP.")
    rate_token_per_visitor: str = Field("10/minute", description="Token requests per visitorId.")
    rate_chat: str = Field("6/10seconds", description="Chat messages per viewer identity.")
    rate_history: str = Field("30/minute", description="History reads per viewer identity.")
    dispatch_lock_s: float = Field(
        10.0, gt=0, description="How long the per-room dispatch lock is held at most (seconds)."
    )
    history_timeout_s: float = Field(
        2.0, gt=0, description="How long to wait for chat-history to answer (seconds)."
    )
    web_dist: Path = Field(DEFAULT_WEB_DIST, description="Folder of the built viewer pages.")
    app_name: str = Field("livestage", description="`app` in the host dispatch metadata.")
    mode: str = Field("live", description="`mode` in the host dispatch metadata.")
    stage_media_url: str = Field(
        "http://127.0.0.1:8091",
        description="The stage producer's asset server, which GET /media/... streams from "
        "(STAGE_HTTP_HOST/STAGE_HTTP_PORT there).",
    )

    @field_validator("avatars")
    @classmethod
    def _avatars_are_ids(cls, value: list[str]) -> list[str]:
        import re

        bad = [avatar for avatar in value if not re.fullmatch(r"[a-z0-9_-]{1,32}", avatar)]
        if bad or not value:
            raise ValueError(f"avatars must be a non-empty list of [a-z0-9_-]{{1,32}}, got {bad}")
        return value
