"""The base of every avatar backend: something started before the `AgentSession`, closed at the end.

    avatar = AVATARS.create(name, config, persona)   # AvatarBackend.from_settings(...)
    await avatar.start(agent_session, room)         # before agent_session.start(...)
    ...
    await avatar.aclose()                           # takes the avatar participant out of the room

A video avatar joins the room as its own participant and takes over the session's audio output
(livekit-agents' `AvatarSession` does this with `DataStreamAudioOutput`), so the viewers get audio
and video in sync from the avatar participant; a backend over a livekit-agents `AvatarSession`
(the local drawn avatar, the Anam plugin's) delegates `start` and `aclose` to it. `none`
publishes nothing: the agent's own audio track is all there is, and the pages show a poster. A
backend that cannot start raises (`BackendUnavailable` for a missing key); the job falls back to
the next one (local, then none).

What the job reads besides (declared here, with the defaults of an avatar that has none of it):
`avatar_identity` (the participant that speaks for the host: the job watches it leave or drop
its video, and routes a rebuilt session's audio to it), `production` (a paid backend: its
failures fall back to `local`, its session time is counted) and `usage_backend` (the name its
minutes are counted under; None: its own name).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.config import JobConfig
from host_agent.persona import Persona


class AvatarBackend(ABC):
    name: ClassVar[str]
    production: ClassVar[bool] = False
    """A paid backend: its failures fall back to `local`, its minutes are counted."""
    usage_backend: ClassVar[str | None] = None
    """Usage name its minutes are counted under (`host_agent.usage`); None: its own name."""

    @classmethod
    @abstractmethod
    def from_settings(cls, config: JobConfig, persona: Persona) -> Self:
        """The backend for the job's config and the current persona (raises
        `BackendUnavailable` when something it needs, such as a key, is missing)."""

    @property
    def avatar_identity(self) -> str | None:
        """The participant identity of a video avatar, None for one without a participant."""
        return None

    @abstractmethod
    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        """Join the avatar and route the session's audio to it (before `session.start`)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Take the avatar participant out of the room."""
