"""The host's state in its participant attributes, which the pages read.

The names are `livestage.attributes`' (the pages read them from the generated wire schema):
`livestage.host.state` (paused, speaking, thinking or idle), `.persona`, `.voice` and `.avatar`;
only what changed is sent, in the background (a room going away is no error here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from livekit import rtc

from livestage import attributes
from livestage.attributes import HostState

STATE_ATTRIBUTE = attributes.HOST_STATE
PERSONA_ATTRIBUTE = attributes.HOST_PERSONA
VOICE_ATTRIBUTE = attributes.HOST_VOICE
AVATAR_ATTRIBUTE = attributes.HOST_AVATAR


def host_state(*, paused: bool, agent_state: str, planning: bool) -> HostState:
    """The host's state for the pages: paused, speaking, thinking or idle."""
    if paused:
        return "paused"
    if agent_state == "speaking":
        return "speaking"
    if agent_state == "thinking" or planning:
        return "thinking"
    return "idle"


class HostAttributes:
    """What the host's participant attributes say, sent when it changes."""

    def __init__(self, room: rtc.Room, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self.room = room
        self._spawn = spawn
        self.published: dict[str, str] = {}

    def show(self, *, state: str, persona: str, voice: str, avatar: str) -> None:
        room = self.room
        if not room.isconnected():
            return
        wanted = {
            STATE_ATTRIBUTE: state,
            PERSONA_ATTRIBUTE: persona,
            VOICE_ATTRIBUTE: voice,
            AVATAR_ATTRIBUTE: avatar,
        }
        changed = {k: v for k, v in wanted.items() if self.published.get(k) != v}
        if not changed:
            return
        self.published |= changed

        async def publish() -> None:
            with contextlib.suppress(Exception):
                await room.local_participant.set_attributes(changed)

        self._spawn(publish())
