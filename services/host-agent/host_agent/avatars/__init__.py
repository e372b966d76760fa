"""Avatar backends, chosen by `HOST_AVATAR` (see `host_agent.settings.resolve_avatar`): one
factory per backend, each backend a module or package beside `base.py` (`local/`: our drawn
face; `none.py`: audio only)."""

from __future__ import annotations

from host_agent.avatars.base import AvatarBackend, AvatarFactory
from host_agent.avatars.local import LocalAvatarSession
from host_agent.avatars.none import no_avatar
from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona
from host_agent.settings import HostSettings

REGISTRY: dict[str, AvatarFactory] = {
    "none": no_avatar,
    "local": lambda settings, persona: LocalAvatarSession.from_settings(name=persona.name),
}


def create_avatar(name: str, settings: HostSettings, persona: Persona) -> AvatarBackend:
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise BackendUnavailable(
            f"avatar backend {name!r} is not available; choose one of {sorted(REGISTRY)}"
        ) from None
    return factory(settings, persona)
