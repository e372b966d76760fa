"""The base of every avatar backend: what the host looks like.

An avatar backend is started before the `AgentSession` (`await backend.start(session, room)`):
a video avatar joins the room as its own participant and takes over the session's audio output
(livekit-agents' `AvatarSession` does this with `DataStreamAudioOutput`), so the viewers get
audio and video in sync from the avatar participant. `aclose()` takes the avatar participant out
of the room. `none` publishes nothing: the host agent's own audio track is all there is, and the
pages show a poster.

Backends are files (or packages) beside this one, registered in `host_agent.avatars.REGISTRY`
under the name `HOST_AVATAR` selects; one that cannot start raises `BackendUnavailable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.persona import Persona
from host_agent.settings import HostSettings


class AvatarBackend(ABC):
    name: ClassVar[str]
    identity: ClassVar[str | None] = None
    """The avatar participant's identity (None: no avatar participant)."""

    def __init__(self, settings: HostSettings, persona: Persona) -> None:
        self.settings = settings
        self.persona = persona

    @abstractmethod
    async def start(self, session: AgentSession, room: rtc.Room) -> None:
        """Join the avatar and route the session's audio to it (before `session.start`)."""

    async def aclose(self) -> None:
        """Take the avatar participant out of the room."""
        return None

    @property
    def usage(self) -> dict[str, float]:
        return {}
