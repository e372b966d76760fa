"""The only place LiveKit participant attribute names (and their closed values) are defined.

The host agent keeps its state in its own participant attributes; the pages find the host as the
AGENT-kind participant that carries `HOST_STATE` and show it. The pages read these names from
`web/src/wire/schema.json` (written by `scripts/wire_schema.py`), never from a copy.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

HOST_STATE: Final = "livestage.host.state"
"""What the host is doing, one of `HOST_STATES`."""
HOST_PERSONA: Final = "livestage.host.persona"
"""The persona's display name."""
HOST_VOICE: Final = "livestage.host.voice"
"""The voice backend in use (its registry name)."""
HOST_AVATAR: Final = "livestage.host.avatar"
"""The avatar backend in use (its registry name)."""

HostState = Literal["idle", "thinking", "speaking", "paused"]
HOST_STATES: Final[tuple[str, ...]] = get_args(HostState)
