"""Avatar backends, chosen by `HOST_AVATAR` (see `host_agent.settings.resolve_avatar`): one
factory per backend, each backend a module or package beside `base.py` (`local/`: our drawn
face; `anam.py`: Anam's avatar; `none.py`: audio only)."""

from __future__ import annotations

from host_agent.avatars.anam import AnamAvatar
from host_agent.avatars.base import AvatarBackend, AvatarFactory
from host_agent.avatars.local import LocalAvatarSession
from host_agent.avatars.none import no_avatar
from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona

REGISTRY: dict[str, AvatarFactory] = {
    "none": no_avatar,
    "local": lambda config, persona: LocalAvatarSession.from_settings(
        config.local_avatar, config.livekit, name=persona.name
    ),
    "anam": AnamAvatar,
}


def create_avatar(name: str, config: JobConfig, persona: Persona) -> AvatarBackend:
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise BackendUnavailable(
            f"avatar backend {name!r} is not available; choose one of {sorted(REGISTRY)}"
        ) from None
    return factory(config, persona)
