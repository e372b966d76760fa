"""Avatar backends, one module each behind `base.AvatarBackend`, chosen by name (`HOST_AVATAR`).

| name | shows | production | needs |
|---|---|---|---|
| none | nothing: the host's audio only, the pages show a poster | no | nothing |
| local | our drawn host (`local/`), `avatar-host` | no | nothing |
| anam | Anam's avatar (`anam.py`), `anam-avatar-host` | yes | `ANAM_API_KEY`, `ANAM_AVATAR_ID` |

`auto` (an empty `HOST_AVATAR`): anam with `ANAM_API_KEY`, else local when installed, else none
(`AVATARS.resolve("auto", anam_key=...)`, the rule in `auto_avatar`).

    avatar = AVATARS.create(name, config, persona)   # AvatarBackend.from_settings(config, persona)

An unknown name raises `UnknownBackend` (every valid name in the message). Adding an avatar: a
module beside `anam.py` with an `AvatarBackend` subclass, and its class in `AVATARS`.
"""

from __future__ import annotations

from collections.abc import Collection

from host_agent.avatars.anam import AnamAvatar
from host_agent.avatars.base import AvatarBackend
from host_agent.avatars.local import LocalAvatarBackend
from host_agent.avatars.none import NoAvatar
from livestage.registry import Registry


def auto_avatar(*, anam_key: bool, available: Collection[str]) -> str:
    """The avatar for `auto`: anam with a key when installed, else local when installed, else
    none."""
    if anam_key and AnamAvatar.name in available:
        return AnamAvatar.name
    return LocalAvatarBackend.name if LocalAvatarBackend.name in available else NoAvatar.name


AVATARS: Registry[AvatarBackend] = Registry(
    "avatar",
    setting="HOST_AVATAR",
    members=(NoAvatar, LocalAvatarBackend, AnamAvatar),
    auto=lambda *, anam_key: auto_avatar(anam_key=anam_key, available=AVATARS.names()),
)

__all__ = ["AVATARS", "AvatarBackend", "auto_avatar"]
