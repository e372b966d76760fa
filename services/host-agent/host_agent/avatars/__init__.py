"""Avatar backends, chosen by `HOST_AVATAR` (see `host_agent.settings.resolve_avatar`)."""

from __future__ import annotations

from host_agent.avatars.base import AvatarBackend
from host_agent.avatars.none import NoAvatar
from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona
from host_agent.settings import HostSettings

REGISTRY: dict[str, type[AvatarBackend]] = {NoAvatar.name: NoAvatar}


def create_avatar(name: str, settings: HostSettings, persona: Persona) -> AvatarBackend:
    try:
        backend = REGISTRY[name]
    except KeyError:
        raise BackendUnavailable(
            f"avatar backend {name!r} is not available; choose one of {sorted(REGISTRY)}"
        ) from None
    return backend(settings, persona)
