"""The host's state in its participant attributes, which the pages read.

The names are `livestage.attributes`' (the pages read them from the generated wire schema):
`livestage.host.state` (paused, speaking, thinking or idle), `.persona`, `.voice` and `.avatar`;
only what changed is sent, in the background (a room going away is no error here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
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
    """What the host's participant attributes say, sent when it changes.

    One sender at a time, always sending what is wanted *now*: state changes come quickly (a
    turn ends: speaking → thinking → idle within milliseconds), and two `set_attributes` calls in
    flight at once may be applied by the server in either order, which could leave a page showing
    `thinking` for good. A call that fails is tried again (the attribute is only counted as sent
    once the server took it)."""

    RETRY_S = 0.5
    ATTEMPTS = 20

    def __init__(
        self,
        room: rtc.Room,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        send: Callable[[dict[str, str]], Awaitable[None]] | None = None,
    ) -> None:
        self.room = room
        self._spawn = spawn
        self._send = send or self._set_attributes
        self.wanted: dict[str, str] = {}
        self.published: dict[str, str] = {}  # what the server has taken
        self._sending = False

    def show(self, *, state: str, persona: str, voice: str, avatar: str) -> None:
        if not self.room.isconnected():
            return
        self.wanted = {
            STATE_ATTRIBUTE: state,
            PERSONA_ATTRIBUTE: persona,
            VOICE_ATTRIBUTE: voice,
            AVATAR_ATTRIBUTE: avatar,
        }
        if not self._sending and self._changes():
            self._sending = True
            self._spawn(self._send_changes())

    def _changes(self) -> dict[str, str]:
        return {k: v for k, v in self.wanted.items() if self.published.get(k) != v}

    async def _send_changes(self) -> None:
        failures = 0
        try:
            while (changed := self._changes()) and failures < self.ATTEMPTS:
                if not self.room.isconnected():
                    return
                try:
                    await self._send(changed)
                except Exception:  # noqa: BLE001 - a room going away is no error here
                    failures += 1
                    await asyncio.sleep(self.RETRY_S)
                    continue
                self.published |= changed
        finally:
            self._sending = False

    async def _set_attributes(self, changed: dict[str, str]) -> None:
        await self.room.local_participant.set_attributes(changed)
