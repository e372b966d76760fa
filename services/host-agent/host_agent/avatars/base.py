"""What every avatar backend is: something started before the `AgentSession` and closed at the end.

    avatar = REGISTRY[name](config, persona)     # a factory per backend (config: JobConfig)
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

Optional attributes the job reads (with `getattr`): `avatar_identity` (the participant that
speaks for the host: the job watches it leave or drop its video, and routes a rebuilt
session's audio to it), `production` (a paid backend: its failures fall back to `local`, its
session time is counted) and `usage_backend` (the name its minutes are counted under).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from livekit import rtc
from livekit.agents import AgentSession

from host_agent.config import JobConfig
from host_agent.persona import Persona


@runtime_checkable
class AvatarBackend(Protocol):
    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        """Join the avatar and route the session's audio to it (before `session.start`)."""
        ...

    async def aclose(self) -> None:
        """Take the avatar participant out of the room."""
        ...


AvatarFactory = Callable[[JobConfig, Persona], AvatarBackend]
"""How the registry makes a backend: from the job's config and the current persona."""


def avatar_identity(backend: object) -> str | None:
    """The participant identity of a video avatar, None for `none`."""
    identity = getattr(backend, "avatar_identity", None)
    return identity if isinstance(identity, str) and identity else None


def is_production(backend: object) -> bool:
    return bool(getattr(backend, "production", False))
