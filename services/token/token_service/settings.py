"""Settings of the edge (`TOKEN_*`), beside the shared LiveKit, NATS and Redis settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from limits import parse
from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from livestage.display_names import RESERVED_NAMES
from livestage.settings import settings_config

DEFAULT_WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"


class EdgeSettings(BaseSettings):
    """HTTP edge: listen address, visitors, rate limits, timeouts, body caps, dispatch, pages."""

    model_config = settings_config("TOKEN_")

    host: str = Field("127.0.0.1", description="Address the edge listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the edge listens on.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Edge worker processes behind the one port (uvicorn workers). Each keeps "
        "its own NATS connection, console feed, verified-token cache, host reconciler, /media "
        "slots and in-memory limits (/media, /statusz); chat limits and bans are in Redis, "
        "shared by all. About one per CPU the edge may use.",
    )
    access_log: bool = Field(
        False,
        description="Log a line per HTTP request (uvicorn's access log). Off by default: at "
        "a busy room's chat rate it cost the edge about a tenth of its CPU; traces (OTLP) "
        "record every request anyway.",
    )
    avatars: list[str] = Field(
        default=["fox", "owl", "cat", "robot", "panda", "frog"],
        description="Avatar ids a viewer may pick (JSON list).",
    )
    token_ttl_s: PositiveInt = Field(7200, description="Lifetime of a viewer token (seconds).")
    verified_tokens: int = Field(
        10_000,
        ge=0,
        description="Viewer tokens each edge worker remembers having verified (least recently "
        "used go first), so a chat POST with a known token skips the signature check (expiry "
        "and room are checked every time); 0 checks every token in full.",
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description="CIDRs of reverse proxies whose X-Forwarded-For (and X-Forwarded-Proto) is "
        "believed (JSON list); empty means the socket peer is the client.",
    )

    # --- visitors ------------------------------------------------------------------------------
    visitor_key: SecretStr | None = Field(
        None,
        description="Key that signs visitor cookies and derives visitor tags; empty: derived "
        "from LIVEKIT_API_SECRET (every replica with the same secret agrees).",
    )
    visitor_cookie_max_age_s: PositiveInt = Field(
        365 * 24 * 3600, description="Lifetime of the visitor cookie (seconds)."
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Secure flag of the visitor and operator session cookies: auto sets it for "
        "https requests "
        "(X-Forwarded-Proto from a trusted proxy counts).",
    )

    # --- rate limits ---------------------------------------------------------------------------
    rate_token_per_ip: str = Field(
        "20/minute",
        description="Token requests per client network (an IPv4 address, an IPv6 /64).",
    )
    rate_token_per_visitor: str = Field("10/minute", description="Token requests per visitor.")
    rate_chat: str = Field(
        "6/10seconds", description="Chat messages per visitor (all of its tokens together)."
    )
    rate_chat_per_network: str = Field(
        "20/10seconds",
        description="Chat messages per client network (IPv4 address, IPv6 /64), all visitors "
        "together.",
    )
    rate_history: str = Field("30/minute", description="History reads per visitor.")
    rate_history_per_network: str = Field(
        "120/minute", description="History reads per client network, all visitors together."
    )
    rate_media_per_network: str = Field(
        "300/minute",
        description="GET /media/ requests per client network (IPv4 address, IPv6 /64), counted "
        "by each edge replica in its own memory (a visual never waits for Redis).",
    )
    rate_status_per_network: str = Field(
        "30/minute",
        description="GET /statusz requests per client network, counted by each replica in its "
        "own memory (the answer is cached anyway).",
    )

    # --- /media: what slow readers may hold ------------------------------------------------------
    media_streams_per_client: PositiveInt = Field(
        6,
        description="GET /media/ responses one client network may have in flight at once on "
        "one replica; one more is a 429.",
    )
    media_max_streams: PositiveInt = Field(
        64,
        description="Clips (and HEAD/Range answers of them) streamed from the stage producer at "
        "once per replica; past it a request waits TOKEN_MEDIA_SLOT_WAIT_S, then 503.",
    )
    media_max_reads: PositiveInt = Field(
        32,
        description="Images read from the stage producer at once per replica (each is read "
        "whole, then sent from memory: a slow reader holds no upstream connection).",
    )
    media_slot_wait_s: PositiveFloat = Field(
        0.5, description="Longest wait for a free clip or image slot before a 503 (seconds)."
    )
    media_stall_timeout_s: PositiveFloat = Field(
        10.0,
        description="A reader that takes no chunk of an asset for this long is cut off and "
        "its slot freed (seconds).",
    )
    media_max_image_bytes: PositiveInt = Field(
        16 * 1024 * 1024,
        description="Largest image the edge reads into memory (as STAGE_ASSET_MAX_BYTES); a "
        "larger one is a 502.",
    )

    # --- dependency status ---------------------------------------------------------------------
    status_interval_s: PositiveFloat = Field(
        5.0,
        description="How often the edge checks NATS, Redis, LiveKit and the stage producer for "
        "GET /statusz and the dependency gauge (seconds): one check of each per interval, "
        "whatever the request rate.",
    )

    # --- bans ------------------------------------------------------------------------------------
    visitor_network_ttl_s: PositiveInt = Field(
        86400,
        description="How long the edge remembers the network (IPv4 address, IPv6 /64) each "
        "visitor last asked for a token or chatted from, which an operator ban with scope "
        "network bans (seconds).",
    )
    network_ban_max_s: PositiveInt = Field(
        86400,
        description="The longest the network part of a ban lasts (seconds; addresses change "
        "hands): a longer or permanent ban keeps its visitor part.",
    )

    # --- the operator console ------------------------------------------------------------------
    operator_session_s: PositiveInt = Field(
        7200,
        description="Lifetime of an operator's console session (the HttpOnly cookie set by "
        "POST /api/operator/session; seconds). Sign-in again after it.",
    )
    rate_operator_sign_in: str = Field(
        "5/minute",
        description="Operator sign-in attempts per client network (IPv4 address, IPv6 /64), "
        "right or wrong; one more is a 429 with Retry-After.",
    )
    console_streams: PositiveInt = Field(
        20,
        description="Open GET /api/operator/events streams per edge replica at most; one more "
        "is a 503.",
    )
    console_rooms: PositiveInt = Field(
        20,
        description="Shows whose console feed (NATS watches and recent past) one edge replica "
        "keeps at most; a new show's closes the least recently opened idle one, and with every "
        "one in use it is a 503.",
    )
    console_numbers_s: PositiveFloat = Field(
        5.0,
        description="How often the console's numbers (viewers, chat rate, rejected share, "
        "spend, host reaction) are sent while a console is open (seconds).",
    )
    console_backlog_s: PositiveInt = Field(
        1800,
        description="How far back a show's console feed reads chat, visuals and host events "
        "when a console first opens it on an edge worker, so the console sees the recent past "
        "(seconds).",
    )
    console_queue: PositiveInt = Field(
        256,
        description="Events one console stream may have waiting; a console that falls further "
        "behind is dropped (its page reconnects and gets a fresh snapshot).",
    )

    # --- timeouts and body caps ----------------------------------------------------------------
    livekit_timeout_s: PositiveFloat = Field(
        2.0, description="Longest wait for one LiveKit server API call (seconds)."
    )
    redis_timeout_s: PositiveFloat = Field(
        1.0, description="Longest wait for one Redis command or connect (seconds)."
    )
    redis_max_connections: PositiveInt = Field(
        200,
        description="Connections to Redis at most; more concurrent commands wait (up to "
        "TOKEN_REDIS_TIMEOUT_S) for a free one.",
    )
    nats_timeout_s: PositiveFloat = Field(
        2.0, description="Longest wait for JetStream to store a message (seconds)."
    )
    history_timeout_s: PositiveFloat = Field(
        2.0, description="How long to wait for chat-history to answer (seconds)."
    )
    max_json_body_bytes: PositiveInt = Field(
        16 * 1024, description="Largest JSON request body; larger ones get 413 unread."
    )
    max_webhook_body_bytes: PositiveInt = Field(
        64 * 1024, description="Largest LiveKit webhook body; larger ones get 413 unread."
    )

    # --- host dispatch -------------------------------------------------------------------------
    dispatch_lock_s: PositiveFloat = Field(
        10.0, description="How long the per-room dispatch lock is held at most (seconds)."
    )
    dispatch_stale_s: PositiveFloat = Field(
        30.0,
        description="A host dispatch with no job (or a pending job) older than this is deleted "
        "and replaced (seconds).",
    )
    host_join_grace_s: PositiveFloat = Field(
        15.0,
        description="How long a running host job may be without its participant in the room "
        "before it counts as crashed and is replaced (seconds).",
    )
    dispatch_worker_grace_s: PositiveFloat = Field(
        2.0,
        description="A host dispatch made before a host worker registered that still has no "
        "job this long after it was made is deleted and replaced: LiveKit never offers it to "
        "the new worker (seconds).",
    )
    reconcile_interval_s: PositiveFloat = Field(
        5.0,
        description="How often the edge looks at its room: with viewers in it and no host on "
        "its way, the host is re-dispatched without waiting for a token request (seconds).",
    )
    reconcile_backoff_max_s: PositiveFloat = Field(
        60.0,
        description="Longest wait between re-dispatches (or failed looks) of one room while no "
        "host comes; the wait doubles from 1 s (seconds).",
    )
    show_cache_s: float = Field(
        5.0,
        ge=0,
        description="How long each edge worker believes a show it found exists before asking "
        "Redis again when a viewer token for it is used (seconds): a chat POST costs no Redis "
        "call for it. Every worker follows show changes over NATS, so a deleted show's tokens "
        "are refused at once everywhere; this is how long one missed while NATS was away may "
        "still be believed; 0 asks every time.",
    )
    host_cache_ttl_s: PositiveFloat = Field(
        5.0,
        description="How long the room's host state (from LiveKit, webhooks and host job "
        "events) is believed before LiveKit is asked again (seconds).",
    )

    # --- display names -------------------------------------------------------------------------
    reserved_names: list[str] = Field(
        default_factory=lambda: list(RESERVED_NAMES),
        description="Names no viewer may take, as a name or a word of one, in any spelling "
        "(look-alikes, leetspeak, spacing): the host's persona names and staff words (JSON "
        "list). Add the name of a persona of your own; the list replaces the default.",
    )

    web_dist: Path = Field(DEFAULT_WEB_DIST, description="Folder of the built viewer pages.")
    app_name: str = Field("livestage", description="`app` in the host dispatch metadata.")
    mode: str = Field("live", description="`mode` in the host dispatch metadata.")
    stage_media_url: str = Field(
        "http://127.0.0.1:8091",
        description="The stage producer's asset server, which GET /media/... streams from "
        "(STAGE_HTTP_HOST/STAGE_HTTP_PORT there).",
    )

    # --- egress (going live without OBS) ---------------------------------------------------------
    egress_api_url: str = Field(
        "",
        description="URL of LiveKit's Egress API (Twirp livekit.Egress on the LiveKit server); "
        "empty: the LiveKit server API (LIVEKIT_API_URL, else LIVEKIT_URL).",
    )
    egress_stage_url: str = Field(
        "http://127.0.0.1:8080/stage?captions=1",
        description="The stage page the egress service's browser opens and streams: a URL of "
        "this edge that the egress container reaches (compose: http://token:8080/stage?captions=1).",
    )
    egress_timeout_s: PositiveFloat = Field(
        15.0,
        description="Longest wait for one Egress API call (seconds): LiveKit answers a start "
        "once an egress worker took it, and after about 10 s says none did.",
    )

    @field_validator("reserved_names")
    @classmethod
    def _reserved_names_are_short(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not 1 <= len(name.strip()) <= 64]
        if bad:
            raise ValueError(f"reserved names must be 1-64 characters, got {bad}")
        return value

    @field_validator("avatars")
    @classmethod
    def _avatars_are_ids(cls, value: list[str]) -> list[str]:
        bad = [avatar for avatar in value if not re.fullmatch(r"[a-z0-9_-]{1,32}", avatar)]
        if bad or not value:
            raise ValueError(f"avatars must be a non-empty list of [a-z0-9_-]{{1,32}}, got {bad}")
        return value

    @field_validator(
        "rate_token_per_ip",
        "rate_token_per_visitor",
        "rate_chat",
        "rate_chat_per_network",
        "rate_history",
        "rate_history_per_network",
        "rate_media_per_network",
        "rate_status_per_network",
        "rate_operator_sign_in",
    )
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise ValueError(f"not a rate limit like '6/10seconds': {error}") from error
        return value

    @model_validator(mode="after")
    def _lock_outlasts_livekit_calls(self) -> Self:
        # Deciding on a host takes up to four LiveKit calls under the lock; the lock must
        # outlive them, or a second request could decide (and dispatch) at the same time.
        if self.dispatch_lock_s < 4 * self.livekit_timeout_s + 1:
            raise ValueError(
                f"TOKEN_DISPATCH_LOCK_S ({self.dispatch_lock_s}) must be at least "
                f"4 * TOKEN_LIVEKIT_TIMEOUT_S + 1 ({4 * self.livekit_timeout_s + 1})"
            )
        return self
