"""`none`: no avatar video. The host agent publishes its audio itself; pages show a poster."""

from __future__ import annotations

from typing import Any, Self

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.avatars.base import AvatarBackend
from host_agent.config import JobConfig
from host_agent.persona import Persona


class NoAvatar(AvatarBackend):
    name = "none"

    @classmethod
    def from_settings(cls, config: JobConfig, persona: Persona) -> Self:
        return cls()

    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        return None

    async def aclose(self) -> None:
        return None
