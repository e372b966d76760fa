"""`none`: no avatar video. The host agent publishes its audio itself; pages show a poster."""

from __future__ import annotations

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.avatars.base import AvatarBackend


class NoAvatar(AvatarBackend):
    name = "none"

    async def start(self, session: AgentSession, room: rtc.Room) -> None:
        return None
