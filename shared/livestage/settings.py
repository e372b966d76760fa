"""Settings for every Livestage service, read from the environment (and `.env`).

Each group is its own pydantic-settings class with an environment prefix (`settings_config`, which
the services' own classes use too), so a service loads only what it needs (`LiveKitSettings()`).
`settings_classes()` lists them all, shared and per service; `.env.example` documents every
variable, and `tests/repo/test_settings_env_example.py` keeps that file in step with the classes. A
pure module's config of a few settings is built with `derive` (defaults from `default_of`).

Every default here is one a developer can run with: local servers on 127.0.0.1 and no keys, in
which case the voice, avatar and backdrop backends fall back to local stand-ins.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domains import DomainLists, normalize_domains
from .egress import EgressPolicy
from .subjects import InvalidRoomName, check_room

Config = TypeVar("Config")

Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port a service listens on (0..65535; each setting says what its 0 means)."""


def settings_config(prefix: str) -> SettingsConfigDict:
    """The `model_config` of every Livestage settings class, shared and per service.

    Each field is read from `<prefix><FIELD>` (names case-insensitive) in the environment or a
    `.env` file (UTF-8) in the working directory; an empty value counts as unset; variables the
    class does not know are ignored (one `.env` serves every service).
    """
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # `OPENAI_API_KEY=` in .env means "not set"
    )


def default_of(settings: type[BaseModel], name: str) -> Any:
    """The default of the field `name` of a settings class (for a derived config's default)."""
    field = settings.model_fields.get(name)
    if field is None:
        raise TypeError(f"{settings.__name__} has no field {name!r}")
    return field.get_default(call_default_factory=True)


def derive(config: type[Config], settings: BaseModel) -> Config:
    """Build the dataclass `config` from the fields of `settings` with the same names.

    A pure module's config (`BrainConfig`, `PlanSettings`, `Prices`) is a plain dataclass with
    some of a settings class's fields. The settings class owns each default (where its
    description and `.env.example` are); the dataclass takes it with `default_of`, so tests
    can still build one from a few keywords, and the service builds it here instead of
    copying field by field.
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"derive() builds dataclasses, not {config!r}")
    names = [field.name for field in dataclasses.fields(config) if field.init]
    known = type(settings).model_fields
    missing = [name for name in names if name not in known]
    if missing:
        raise TypeError(
            f"{type(settings).__name__} has no field {', '.join(missing)} "
            f"that {config.__name__} needs"
        )
    return config(**{name: getattr(settings, name) for name in names})


class LiveKitSettings(BaseSettings):
    """The LiveKit server, the room viewers join, and the host agent's name."""

    model_config = settings_config("LIVEKIT_")

    url: str = Field(
        "ws://127.0.0.1:7880",
        description="LiveKit server URL handed to browsers and workers (ws:// or wss://).",
    )
    api_url: str = Field(
        "",
        description="URL the services use for the LiveKit server API; empty means derive it "
        "from LIVEKIT_URL (ws->http, wss->https).",
    )
    api_key: str = Field("devkey", description="LiveKit API key (`--dev` uses devkey).")
    api_secret: SecretStr = Field(
        SecretStr("secret"), description="LiveKit API secret (`--dev` uses secret)."
    )
    room: str = Field("livestage", description="The room every viewer joins.")
    agent_name: str = Field(
        "livestage-host",
        description="Agent name the host-agent worker registers under (1-64 of A-Z, a-z, 0-9, "
        "_ and -: workers announce themselves on `host.worker.<name>`).",
    )

    @field_validator("agent_name")
    @classmethod
    def _agent_name_is_a_subject_token(cls, value: str) -> str:
        try:
            return check_room(value)
        except InvalidRoomName:
            raise ValueError(
                f"agent name {value!r} is not allowed: use 1-64 characters of A-Z, a-z, 0-9, "
                "'_' or '-' (it is a NATS subject token)"
            ) from None

    @property
    def http_url(self) -> str:
        """The server API URL: LIVEKIT_API_URL, or LIVEKIT_URL with an http scheme."""
        if self.api_url:
            return self.api_url
        if self.url.startswith("wss://"):
            return "https://" + self.url.removeprefix("wss://")
        if self.url.startswith("ws://"):
            return "http://" + self.url.removeprefix("ws://")
        return self.url


class NatsSettings(BaseSettings):
    """The NATS server with JetStream that carries every event between services."""

    model_config = settings_config("NATS_")

    url: str = Field("nats://127.0.0.1:4222", description="NATS server URL(s), comma-separated.")
    connect_timeout_s: PositiveFloat = Field(2.0, description="Seconds to wait for one connect.")
    max_reconnect_attempts: int = Field(
        -1, description="Reconnect attempts after a lost connection (-1: forever)."
    )
    stream_max_age_s: PositiveInt = Field(
        7 * 24 * 3600, description="How long a JetStream stream keeps a message (seconds)."
    )
    stream_max_bytes: PositiveInt = Field(
        256 * 1024 * 1024, description="Size cap of each JetStream stream (bytes)."
    )
    duplicate_window_s: PositiveInt = Field(
        120, description="JetStream de-duplication window for Nats-Msg-Id (seconds)."
    )
    retry_budget_s: PositiveFloat = Field(
        900.0,
        description="How long a durable consumer keeps retrying a message it cannot handle "
        "(Redis or LiveKit down) before the message goes to the dead-letter stream (seconds; "
        "an outage shorter than this loses nothing).",
    )
    retry_max_backoff_s: PositiveFloat = Field(
        60.0, description="Longest wait between two deliveries of one message (seconds)."
    )
    deadletter_max_age_s: PositiveInt = Field(
        14 * 24 * 3600,
        description="How long the DEADLETTER stream keeps a dead letter for inspection and "
        "replay (seconds).",
    )

    @property
    def servers(self) -> list[str]:
        return [part.strip() for part in self.url.split(",") if part.strip()]


class RedisSettings(BaseSettings):
    """Redis: chat history, rate-limit counters, short locks."""

    model_config = settings_config("REDIS_")

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")


class OpenAISettings(BaseSettings):
    """OpenAI Realtime (the host's voice). Without a key the voice backend is `local`."""

    model_config = settings_config("OPENAI_")

    api_key: SecretStr | None = Field(None, description="OpenAI API key; empty means offline.")
    base_url: str = Field(
        "https://api.openai.com/v1",
        description="OpenAI API base URL (tests point it at a local double).",
    )
    realtime_model: str = Field("gpt-realtime-2", description="Realtime model for the voice.")
    voice: str = Field("cedar", description="Realtime voice.")


class AnamSettings(BaseSettings):
    """Anam (the avatar video). Without a key the avatar backend is `local`."""

    model_config = settings_config("ANAM_")

    api_key: SecretStr | None = Field(None, description="Anam API key; empty means offline.")
    api_url: str = Field("https://api.anam.ai", description="Anam API base URL.")
    avatar_id: str = Field("", description="Anam avatar id for the persona.")
    avatar_model: str = Field("cara-4-latest", description="Anam avatar model.")
    persona_name: str = Field("Cara", description="The host's display name.")


class GeminiSettings(BaseSettings):
    """Gemini (backdrops and topic picking). Without a key both run locally."""

    model_config = settings_config("GEMINI_")

    api_key: SecretStr | None = Field(None, description="Gemini API key; empty means offline.")
    base_url: str = Field(
        "", description="Gemini API base URL override (empty: the library's default)."
    )
    image_model: str = Field("gemini-2.5-flash-image", description="Model for backdrops.")
    text_model: str = Field("gemini-2.5-flash", description="Model for topic picking.")


class TelemetrySettings(BaseSettings):
    """OpenTelemetry. With no endpoint nothing is exported and nothing is printed."""

    model_config = settings_config("OTEL_")

    exporter_otlp_endpoint: str = Field(
        "", description="OTLP/HTTP endpoint of the collector, e.g. http://127.0.0.1:4318."
    )
    service_namespace: str = Field("livestage", description="service.namespace resource attr.")
    metric_export_interval_ms: PositiveInt = Field(
        15000, description="How often metrics are pushed to the collector (ms)."
    )


class TopicSettings(BaseSettings):
    """LiveKit data topics the browsers listen on (defaults match the original recipe)."""

    model_config = settings_config("LIVESTAGE_")

    chat_topic: str = Field("anam-live-chat", description="LiveKit data topic for chat.")
    stage_topic: str = Field("anam-stage-visual", description="LiveKit data topic for visuals.")

    @field_validator("chat_topic", "stage_topic")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a data topic must not be empty")
        return value


class LogSettings(BaseSettings):
    """How services log to their own stderr."""

    model_config = settings_config("LIVESTAGE_")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of every service."
    )


class OperatorSettings(BaseSettings):
    """The one secret that guards every operator route on the edge (chat, host, stage)."""

    model_config = settings_config("LIVESTAGE_")

    operator_secret: SecretStr | None = Field(
        None,
        description="Bearer secret of the operator routes (/api/operator/...), 16+ characters; "
        "empty: those routes answer 503 'not configured'.",
    )

    @field_validator("operator_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(
                "LIVESTAGE_OPERATOR_SECRET must be at least 16 characters "
                "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value


class MemorySettings(BaseSettings):
    """What the host remembers about its regulars across shows (`livestage.memory`): read by the
    host agent (to greet and answer) and the edge (a viewer's "What the host remembers about me"
    and "Forget me"). A show can turn it off (`ShowConfig.memory`)."""

    model_config = settings_config("MEMORY_")

    enabled: bool = Field(
        True, description="Remember viewers across shows; false: nothing is read or written."
    )
    retention_days: int = Field(
        180,
        ge=1,
        le=3650,
        description="Days a viewer's memory is kept after they were last seen; older facts, "
        "questions and topics drop out.",
    )
    max_facts: int = Field(20, ge=1, le=200, description="Most facts kept per viewer.")
    max_bytes: int = Field(
        4096, ge=2048, le=65536, description="Most bytes of one viewer's memory card."
    )
    timeout_ms: int = Field(
        250,
        ge=10,
        le=10_000,
        description="Longest wait for a memory read or write; past it the host goes on without "
        "(memory never holds a reply).",
    )
    extract: Literal["auto", "rules", "model"] = Field(
        "auto",
        description="How facts viewers state about themselves are found: rules (offline "
        'patterns: "I\'m from ..."), model (one structured-output call per answered batch to '
        "the pipeline voice's chat endpoint when HOST_VOICE=pipeline, else OpenAI's with "
        "OPENAI_API_KEY, else HOST_PIPELINE_BASE_URL), auto: model when the host has one (the "
        "pipeline voice, or an OpenAI key), else rules.",
    )
    extract_model: str = Field(
        "gpt-4.1-mini",
        description="Chat model for fact extraction at OpenAI (OPENAI_BASE_URL); the pipeline "
        "voice's endpoint uses HOST_PIPELINE_MODEL.",
    )
    extract_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest wait for one extraction call (seconds); past it, or on any error, "
        "that batch yields no model facts (counted in livestage.memory.extraction_failures).",
    )


class SafetySettings(BaseSettings):
    """Content checks shared by chat moderation, display names, the host's own words and the
    stage's pages (`livestage.safety`): the word lists, the classifier and OpenAI's moderation
    model. One set of lists for every place text is checked."""

    model_config = settings_config("MODERATION_")

    blocklist_path: Path | None = Field(
        None,
        description="Blocklist file (one word, `word*` / `*word` / `*word*` pattern or phrase a "
        "line; `#` comments); empty: the list shipped in livestage/safety/lists/blocklist.txt.",
    )
    allowlist_path: Path | None = Field(
        None,
        description="Allowlist file of words never matched by the word checks (false "
        "positives); empty: the list shipped in livestage/safety/lists/allowlist.txt.",
    )
    classifier_threshold: float = Field(
        0.98,
        gt=0,
        le=1,
        description="alt-profanity-check probability at or above which a message is rejected.",
    )
    classifier_cache_dir: Path = Field(
        Path(".cache/moderation"),
        description="Folder (relative to the working directory) where the classifier's numbers "
        "are cached so later starts skip loading scikit-learn; unwritable means no cache.",
    )
    max_marks_per_char: int = Field(
        3, ge=1, description="Most combining marks on one letter before a message is 'zalgo'."
    )
    openai_model: str = Field("omni-moderation-latest", description="OpenAI moderation model.")
    openai_timeout_s: PositiveFloat = Field(
        3.0, description="How long to wait for OpenAI's moderation endpoint (seconds)."
    )


class StageDomainSettings(BaseSettings):
    """Where the stage may show pages from: ports, domain lists, the tests' loopback switch.

    Read by the stage producer (`StageSettings` extends it; its egress policy enforces them for
    every request the capture browser makes) and by the edge, which refuses an operator's capture
    URL at once with the reason (`livestage.domains.capture_refusal`: the checks that need no DNS).
    """

    model_config = settings_config("STAGE_")

    allowed_ports: list[int] = Field(
        default=[80, 443],
        description="Ports captured pages may reach (JSON list).",
    )
    allowed_domains: list[str] = Field(
        default=[],
        description="When set, the only domains the stage shows pages from (JSON list; "
        '"example.org" also covers "a.example.org"): search results and where a capture ends '
        "up. An operator's capture may go elsewhere. Empty: any public site.",
    )
    blocked_domains: list[str] = Field(
        default=[],
        description="Domains the capture browser never loads anything from, for anyone, "
        'operator included (JSON list; "example.org" also covers "a.example.org"); the edge '
        "refuses an operator's capture of one at once (422).",
    )
    unsafe_allow_loopback_for_tests: bool = Field(
        False,
        description="TESTS ONLY, never in production: let the capture browser reach 127.0.0.1 "
        "(any port) for local test pages. Every other private address stays refused.",
    )

    @field_validator("allowed_domains", "blocked_domains")
    @classmethod
    def _domains(cls, value: list[str], info: ValidationInfo) -> list[str]:
        name = f"STAGE_{(info.field_name or '').upper()}"
        try:
            return list(normalize_domains(value))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None

    @field_validator("allowed_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [port for port in value if not 1 <= port <= 65535]
        if bad:
            raise ValueError(f"STAGE_ALLOWED_PORTS has ports outside 1..65535: {bad}")
        return value

    def domain_lists(self) -> DomainLists:
        return DomainLists.of(self.allowed_domains, self.blocked_domains)

    def egress_policy(self) -> EgressPolicy:
        """The capture browser's egress policy these settings describe."""
        return EgressPolicy(
            allowed_ports=frozenset(self.allowed_ports),
            allow_test_loopback=self.unsafe_allow_loopback_for_tests,
            blocked_domains=self.domain_lists().blocked,
        )


class HealthSettings(BaseSettings):
    """Health endpoints of the worker services (containers and Kubernetes probe them)."""

    model_config = settings_config("LIVESTAGE_")

    health_port: Port = Field(
        0,
        description="Port of a worker's /healthz and /readyz; 0 serves none (make run). The "
        "container images set 8090.",
    )
    health_host: str = Field(
        "127.0.0.1",
        description="Address the health endpoints listen on (the container images set 0.0.0.0).",
    )


class ServiceSettings(BaseSettings):
    """How a worker service process stops (`livestage.service.run`)."""

    model_config = settings_config("LIVESTAGE_")

    stop_timeout_s: PositiveFloat = Field(
        4.0,
        description="After SIGINT/SIGTERM (and the host agent's drain, HOST_DRAIN_TIMEOUT_S) a "
        "service has this long to shut down cleanly; then it logs what it was stuck in and exits "
        "with status 1 (below the 5 s a Procfile runner or `docker stop`'s 10 s allow before "
        "SIGKILL).",
    )


ALL_SETTINGS: tuple[type[BaseSettings], ...] = (
    ServiceSettings,
    LiveKitSettings,
    NatsSettings,
    RedisSettings,
    OpenAISettings,
    AnamSettings,
    GeminiSettings,
    TelemetrySettings,
    TopicSettings,
    LogSettings,
    OperatorSettings,
    MemorySettings,
    HealthSettings,
    SafetySettings,
    StageDomainSettings,
)
"""Every shared settings class; `settings_classes()` adds each service's own."""

SERVICE_PACKAGES = (
    "token_service",
    "host_agent",
    "stage_producer",
    "moderation",
    "chat_history",
    "chat_bridge",
)
"""The service packages whose `settings` module `settings_classes()` reads."""


def own_fields(cls: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields a settings class adds to its bases (a class extending another settings class,
    like `ModerationSettings(SafetySettings)`, lists only its own in `.env.example`)."""
    inherited = {
        name for base in cls.__bases__ if issubclass(base, BaseModel) for name in base.model_fields
    }
    return {name: field for name, field in cls.model_fields.items() if name not in inherited}


def settings_classes() -> tuple[type[BaseSettings], ...]:
    """The shared classes plus every BaseSettings class in a service's `settings` module.

    What `.env.example`, the README's settings table, the Helm chart and the container images
    are checked against. A service package that is not installed is skipped.
    """
    found: list[type[BaseSettings]] = list(ALL_SETTINGS)
    for package in SERVICE_PACKAGES:
        try:
            module = importlib.import_module(f"{package}.settings")
        except ModuleNotFoundError:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                found.append(cls)
    return tuple(found)


def env_variables(classes: tuple[type[BaseSettings], ...] = ALL_SETTINGS) -> dict[str, str]:
    """Map each environment variable the classes read to its description."""
    names: dict[str, str] = {}
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, field in own_fields(cls).items():
            names[(prefix + field_name).upper()] = field.description or ""
    return names


_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#@]+)@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;][^=&;#\s]*(?:pass|secret|token|key|auth)[^=&;#\s]*=)[^&;#\s]+", re.IGNORECASE
)


def mask_url(text: str) -> str:
    """`text` with the credentials of every URL in it masked, for logs and error messages.

    NATS_URL and REDIS_URL carry credentials when auth is on (`nats://user:pw@host:4222`,
    `redis://:pw@host:6379/0`, a NATS token as `nats://token@host`). The password becomes
    `***`, a user name alone (it may be a token) too, and so does the value of a query
    parameter named like a secret (`?password=`, `?token=`). Works on a comma-separated list
    of URLs and on any text that quotes one (an exception's message).
    """

    def userinfo(match: re.Match[str]) -> str:
        user, colon, _ = match["userinfo"].partition(":")
        return f"{match['scheme']}{user + ':***' if colon else '***'}@"

    masked = _URL_USERINFO.sub(userinfo, text)
    return _SECRET_QUERY.sub(lambda match: match["name"] + "***", masked)
