"""Which secrets each service reads: the one table the Helm chart and compose are checked against.

`SERVICE_SETTINGS` maps a service folder (`services/<name>`) to the settings classes the service
constructs when it runs (read from its `__main__`, app/worker/config wiring and the shared
modules it calls: `livestage.service.run` builds ServiceSettings, HealthSettings, Telemetry and
LogSettings; `connect_bus` NatsSettings; `connect_redis` RedisSettings).
`secret_env_names(service)` is what its pod or container must receive from the Secret and
nothing more: the variables of the SecretStr fields of those classes, plus the backend URLs that
carry credentials when auth is on (NATS_URL, REDIS_URL), minus what `NOT_NEEDED` lists with its
reason. Every other variable of those classes is plain configuration (a ConfigMap in Helm).

Notes on the table:
- The stage producer signs its asset URLs with STAGE_ASSET_KEY. Left empty, `livestage.keys`
  derives that key from LIVEKIT_API_SECRET; the chart always sets STAGE_ASSET_KEY instead (from
  `secrets.stageAssetKey`, or derived from the LiveKit secret at render time) so the pod that
  runs Chromium never holds the LiveKit secret. So LiveKitSettings is not in its row.
- `livestage.safety.SafetySettings` (MODERATION_*, no secret) is read by the edge (names), the
  host agent (its own words), the stage producer (pages, topics) and moderation; the OpenAI
  moderation endpoint is used where OPENAI_API_KEY already is (moderation, the host agent).
- `StageDomainSettings` (STAGE_ALLOWED_PORTS, STAGE_*_DOMAINS, no secret) is read by the edge
  (an operator's capture URL is refused at once) and, through `StageSettings`, the stage producer.
- The edge builds `AnamSettings()` only for ANAM_AVATAR_MODEL (the page's avatar label); it
  never calls Anam, so it does not get ANAM_API_KEY.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from chat_bridge.settings import BridgeSettings, TwitchSettings, YouTubeSettings
from chat_history.settings import HistorySettings
from host_agent.settings import (
    CostSettings,
    HostSettings,
    LocalAvatarSettings,
    PipelineSettings,
)
from livestage.settings import (
    AnamSettings,
    GeminiSettings,
    HealthSettings,
    LiveKitSettings,
    LogSettings,
    NatsSettings,
    OpenAISettings,
    OperatorSettings,
    RedisSettings,
    SafetySettings,
    ServiceSettings,
    StageDomainSettings,
    TelemetrySettings,
    TopicSettings,
)
from moderation.settings import ModerationSettings
from stage_producer.settings import StageSettings
from token_service.settings import EdgeSettings

CREDENTIAL_URLS: dict[type[BaseSettings], str] = {
    NatsSettings: "NATS_URL",
    RedisSettings: "REDIS_URL",
}
"""Settings whose URL may carry a user and password (nats://u:p@..., redis://:p@...): secret."""

NOT_NEEDED: dict[str, dict[str, str]] = {
    "token": {"ANAM_API_KEY": "the edge reads only ANAM_AVATAR_MODEL; it never calls Anam"},
}
"""Secret variables a service's classes define but the service never uses, with the reason."""

_WORKER = (ServiceSettings, HealthSettings, TelemetrySettings, LogSettings, NatsSettings)
"""What `livestage.service.run` and `connect_bus` build in every worker service."""


SERVICE_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    # token_service/__main__.py, app.py (create_app), deps.py
    "token": (
        EdgeSettings,
        LiveKitSettings,
        NatsSettings,
        RedisSettings,
        TopicSettings,
        OperatorSettings,
        AnamSettings,
        SafetySettings,  # name moderation (offline checks only: the edge gets no OpenAI key)
        StageDomainSettings,  # operator capture URLs (STAGE_BLOCKED_DOMAINS, ports; no secret)
        TelemetrySettings,
        LogSettings,
    ),
    # moderation/app.py main (ModerationSettings extends SafetySettings)
    "moderation": (*_WORKER, ModerationSettings, RedisSettings, OpenAISettings),
    # chat_history/app.py main, room.py (the LiveKit server API)
    "chat-history": (*_WORKER, HistorySettings, LiveKitSettings, TopicSettings, RedisSettings),
    # stage_producer/app.py main, StageRuntime.create (GeminiSettings)
    "stage-producer": (*_WORKER, StageSettings, GeminiSettings, SafetySettings),
    # chat_bridge/app.py main (and each platform module's from_settings); LIVEKIT_ROOM alone
    # through its own small class: the bridge holds no LiveKit credentials
    "chat-bridge": (*_WORKER, BridgeSettings, YouTubeSettings, TwitchSettings, RedisSettings),
    # host_agent/config.py JobConfig
    "host-agent": (
        *_WORKER,
        HostSettings,
        PipelineSettings,
        CostSettings,
        LocalAvatarSettings,
        LiveKitSettings,
        TopicSettings,
        RedisSettings,
        OpenAISettings,
        AnamSettings,
        SafetySettings,  # the host's own words are checked before they are heard
    ),
}
"""Service folder name -> the settings classes that service constructs."""


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def env_name(cls: type[BaseSettings], field: str) -> str:
    return (str(cls.model_config.get("env_prefix", "")) + field).upper()


def env_names(service: str) -> set[str]:
    """Every variable the service's settings classes read (secret or not)."""
    return {env_name(cls, field) for cls in SERVICE_SETTINGS[service] for field in cls.model_fields}


def secret_env_names(service: str) -> set[str]:
    """The secret variables `service` reads: its SecretStr fields and credential-bearing URLs."""
    names: set[str] = set()
    for cls in SERVICE_SETTINGS[service]:
        if cls in CREDENTIAL_URLS:
            names.add(CREDENTIAL_URLS[cls])
        for field_name, field in cls.model_fields.items():
            if _is_secret(field.annotation):
                names.add(env_name(cls, field_name))
    return names - set(NOT_NEEDED.get(service, {}))
