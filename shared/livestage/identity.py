"""Participant identities: who is a viewer, which visitor they are, which participant is the avatar.

A viewer's LiveKit identity is `viewer_<visitorTag>_<suffix>`:

- `visitorTag` is an opaque tag the edge derives from the visitor's server-issued id with a keyed
  hash (16 lowercase hex characters). Every participant can see identities, so the visitor id
  itself never appears in one; the tag is enough to rate-limit and ban a visitor across tokens.
- `suffix` is 8 random hex characters, new for every token (two tabs are two participants).

A platform viewer (YouTube or Twitch chat, brought in by `services/chat-bridge`) never joins
the room; their messages carry the identity `<platform>:<platform user id>` (`platform_identity`).
Moderation's limits and operator bans hold per platform user as they hold per visitor: a ban
is keyed on the visitor tag of a viewer identity and on the platform identity itself
(`ban_key_of`).

The OBS stage page joins with a viewer identity too (it is an audience for the host), but its
token carries the role `stage` in its metadata, which chat refuses.

The operator console's preview of the stage joins as `preview_<visitorTag>_<suffix>`
(`preview_identity`): not a viewer, so it is no audience. The host agent's presence, the stage
producer, the edge's dispatch and viewer counts all ask `is_viewer_identity`, so an open console
alone never keeps a host (and its paid sessions) running. Chat refuses it (not a viewer token).
"""

from __future__ import annotations

import re
from typing import Final

VIEWER_PREFIX: Final = "viewer_"
PREVIEW_PREFIX: Final = "preview_"
VISITOR_TAG_PATTERN: Final = re.compile(r"[a-z0-9]{8,32}")
_VIEWER_IDENTITY: Final = re.compile(r"viewer_([a-z0-9]{8,32})_([a-f0-9]{8})")

ANAM_AVATAR_IDENTITY: Final = "anam-avatar-host"
"""The Anam avatar participant (the plugin's default is different; the host agent passes this)."""
LOCAL_AVATAR_IDENTITY: Final = "avatar-host"
"""Our own drawn avatar participant."""
AVATAR_IDENTITIES: Final = (ANAM_AVATAR_IDENTITY, LOCAL_AVATAR_IDENTITY)
"""Avatar participants, in the order the pages look for the host's video."""


def viewer_identity(visitor_tag: str, suffix: str) -> str:
    """`viewer_<tag>_<suffix>`; raises ValueError for a malformed tag or suffix."""
    identity = f"{VIEWER_PREFIX}{visitor_tag}_{suffix}"
    if not _VIEWER_IDENTITY.fullmatch(identity):
        raise ValueError(f"not a valid viewer identity: tag {visitor_tag!r}, suffix {suffix!r}")
    return identity


def preview_identity(visitor_tag: str, suffix: str) -> str:
    """`preview_<tag>_<suffix>`, the console's preview (watches, is not an audience);
    ValueError for a malformed tag or suffix."""
    return PREVIEW_PREFIX + viewer_identity(visitor_tag, suffix).removeprefix(VIEWER_PREFIX)


def is_viewer_identity(identity: str) -> bool:
    """True for identities the edge mints for viewers (what the host waits for)."""
    return identity.startswith(VIEWER_PREFIX)


def visitor_tag_of(identity: str) -> str | None:
    """The visitor tag inside a viewer identity, or None when it is not one."""
    match = _VIEWER_IDENTITY.fullmatch(identity)
    return match.group(1) if match else None


_PLATFORM_IDENTITY: Final = re.compile(r"(youtube|twitch):([A-Za-z0-9_-]{1,64})")


def platform_identity(platform: str, user_id: str) -> str:
    """`<platform>:<user id>` for a YouTube or Twitch chat author; ValueError when malformed."""
    identity = f"{platform}:{user_id}"
    if not _PLATFORM_IDENTITY.fullmatch(identity):
        raise ValueError(f"not a valid platform identity: {platform!r}, user id {user_id!r}")
    return identity


def platform_of(identity: str) -> tuple[str, str] | None:
    """(platform, user id) of a platform identity, or None when it is not one."""
    match = _PLATFORM_IDENTITY.fullmatch(identity)
    return (match.group(1), match.group(2)) if match else None


BAN_KEY_PATTERN: Final = r"^([a-z0-9]{8,32}|(youtube|twitch):[A-Za-z0-9_-]{1,64})$"
"""What a ban is keyed on: a visitor tag, or a platform identity (`twitch:<user id>`)."""


def ban_key_of(identity: str) -> str | None:
    """Who a ban of `identity`'s author bans: the visitor behind a viewer identity (every token
    of theirs), a platform user as themselves; None for anyone else (the host, the avatar)."""
    if platform_of(identity) is not None:
        return identity
    return visitor_tag_of(identity)
