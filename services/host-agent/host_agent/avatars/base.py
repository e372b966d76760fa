"""What every avatar backend is: something started before the `AgentSession` and closed at the end.

    avatar = REGISTRY[name](settings, persona)   # a factory per backend
    await avatar.start(agent_session, room)     # before agent_session.start(...)
    ...
    await avatar.aclose()                       # takes the avatar participant out of the room

A video avatar joins the room as its own participant and takes over the session's audio output
(livekit-agents' `AvatarSession` does this with `DataStreamAudioOutput`), so the viewers get audio
and video in sync from the avatar participant. Any livekit-agents `AvatarSession` is already an
`AvatarBackend` (the local drawn avatar, the Anam plugin's), so a backend is usually one factory
in `host_agent.avatars.REGISTRY`. `none` publishes nothing: the agent's own audio track is all
there is, and the pages show a poster. A backend that cannot start raises; the job falls back to
the next one (local, then none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.persona import Persona
from host_agent.settings import HostSettings


@runtime_checkable
class AvatarBackend(Protocol):
    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        """Join the avatar and route the session's audio to it (before `session.start`)."""
        ...

    async def aclose(self) -> None:
        """Take the avatar participant out of the room."""
        ...


AvatarFactory = Callable[[HostSettings, Persona], AvatarBackend]
"""How the registry makes a backend: from the host settings and the current persona."""


def usage_of(backend: object) -> dict[str, float]:
    """Counted usage a backend reports for the job's end event (`usage`), if it has any."""
    usage = getattr(backend, "usage", None)
    return dict(usage) if isinstance(usage, dict) else {}
