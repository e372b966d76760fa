"""`JobConfig`: everything a host job and its backends need, loaded once per process.

Backends are built from it (`VOICES.create(name, config, persona)`, likewise `AVATARS`),
so a production backend finds its keys, base URLs and timeouts here, and tests hand in a config
that points at local doubles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit.agents import APIConnectOptions
from opentelemetry.metrics import Meter

from host_agent.brain import BrainConfig
from host_agent.settings import (
    CostSettings,
    HostSettings,
    LocalAvatarSettings,
    OutputCheckSettings,
    PipelineSettings,
)
from livestage.schemas import ShowConfig
from livestage.settings import (
    AnamSettings,
    LiveKitSettings,
    MemorySettings,
    NatsSettings,
    OpenAISettings,
    RedisSettings,
    SafetySettings,
    TopicSettings,
    derive,
)


@dataclass
class JobConfig:
    """Everything a job needs, loaded once per process (or handed in by tests)."""

    host: HostSettings = field(default_factory=HostSettings)
    livekit: LiveKitSettings = field(default_factory=LiveKitSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    anam: AnamSettings = field(default_factory=AnamSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    local_avatar: LocalAvatarSettings = field(default_factory=LocalAvatarSettings)
    output: OutputCheckSettings = field(default_factory=OutputCheckSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    clock: Callable[[], float] = time.time
    meter: Meter | None = None
    """Where the job's metrics go (None: the global provider `setup_telemetry` installed)."""
    show: ShowConfig | None = None
    """The show a job hosts, as read at dispatch (`host_agent.show.for_show`); None: none read,
    the deployment's settings."""

    @classmethod
    def from_env(cls) -> JobConfig:
        return cls()

    @property
    def openai_key(self) -> bool:
        return self.openai.api_key is not None

    @property
    def anam_key(self) -> bool:
        return self.anam.api_key is not None

    @property
    def connect_options(self) -> APIConnectOptions:
        """Short retries for paid backends, so a failing one gives way within seconds."""
        host = self.host
        return APIConnectOptions(
            max_retry=host.connect_retries,
            retry_interval=host.retry_interval_s,
            timeout=host.connect_timeout_s,
        )

    def brain_config(self) -> BrainConfig:
        return derive(BrainConfig, self.host)
