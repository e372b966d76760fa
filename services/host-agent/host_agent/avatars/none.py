"""`none`: no avatar video. The host agent publishes its audio itself; pages show a poster."""

from __future__ import annotations

from typing import Any

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.config import JobConfig
from host_agent.persona import Persona


class NoAvatar:
    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        return None

    async def aclose(self) -> None:
        return None


def no_avatar(config: JobConfig, persona: Persona) -> NoAvatar:
    return NoAvatar()
