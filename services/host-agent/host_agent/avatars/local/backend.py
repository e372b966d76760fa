"""`local`: our drawn host (`LocalAvatarSession`, `avatar-host`) as a member of `AVATARS`.

Its size, frame rate and mouth lag come from `HOST_AVATAR_*`, the LiveKit URL and keys it joins
with from `LIVEKIT_*`, its display name from the persona.
"""

from __future__ import annotations

from typing import Any, Self

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.avatars.base import AvatarBackend
from host_agent.config import JobConfig
from host_agent.persona import Persona
from livestage.identity import LOCAL_AVATAR_IDENTITY

from .session import LocalAvatarSession


class LocalAvatarBackend(AvatarBackend):
    name = "local"

    def __init__(self, session: LocalAvatarSession) -> None:
        self.session = session

    @classmethod
    def from_settings(cls, config: JobConfig, persona: Persona) -> Self:
        return cls(
            LocalAvatarSession.from_settings(config.local_avatar, config.livekit, name=persona.name)
        )

    @property
    def avatar_identity(self) -> str:
        return LOCAL_AVATAR_IDENTITY

    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        await self.session.start(agent_session, room)

    async def aclose(self) -> None:
        await self.session.aclose()
