"""Who is in the host's room: viewers coming and going, the avatar leaving, the room closing.

A viewer is a STANDARD participant `viewer_…` (`livestage.identity`). The job waits for the
first one at most `HOST_VIEWER_WAIT_S` (`wait_for_viewer`), and ends once none has been in the
room for `HOST_EMPTY_GRACE_S` (`grace_over`). Other participants leaving or dropping their
video are reported too (`on_participant_lost`): the switcher checks whether that was the
production avatar.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from livekit import rtc

from livestage.identity import is_viewer_identity

LostHandler = Callable[[str, str, str], None]
"""`(identity, reason, what)`: a participant left (`avatar_left`) or dropped its video
(`no_video`); `what` says it in words."""


def is_viewer(participant: rtc.RemoteParticipant) -> bool:
    return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD and (
        is_viewer_identity(participant.identity)
    )


class RoomPresence:
    """The room's viewers (`viewers`, `empty_since`) and its participants' comings and goings."""

    def __init__(
        self,
        room: rtc.Room,
        *,
        clock: Callable[[], float],
        grace_s: float,
        on_viewer_joined: Callable[[str], None],
        on_participant_lost: LostHandler,
        on_disconnected: Callable[[], None],
        wake: asyncio.Event,
    ) -> None:
        self.room = room
        self.clock = clock
        self.grace_s = grace_s
        self.viewers: set[str] = set()
        self.empty_since: float | None = None
        self._on_viewer_joined = on_viewer_joined
        self._on_participant_lost = on_participant_lost
        self._on_disconnected = on_disconnected
        self._wake = wake

    def follow(self) -> None:
        """Count the viewers already here and follow the room's events."""
        for participant in self.room.remote_participants.values():
            if is_viewer(participant):
                self.viewers.add(participant.identity)
        self.room.on("participant_connected", self._on_participant_connected)
        self.room.on("participant_disconnected", self._on_participant_disconnected)
        self.room.on("track_unpublished", self._on_track_unpublished)
        self.room.on("disconnected", self._on_room_disconnected)
        self._update_empty()

    def stop(self) -> None:
        self.room.off("participant_connected", self._on_participant_connected)
        self.room.off("participant_disconnected", self._on_participant_disconnected)
        self.room.off("track_unpublished", self._on_track_unpublished)
        self.room.off("disconnected", self._on_room_disconnected)

    def present(self, identity: str) -> bool:
        return identity in self.room.remote_participants

    async def wait_for_viewer(self, within_s: float, stopped: asyncio.Event) -> bool:
        """True once a viewer is here; False after `within_s` without one, or when stopped."""
        deadline = time.monotonic() + within_s
        while not self.viewers and not stopped.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        return bool(self.viewers) and not stopped.is_set()

    def grace_over(self, now: float) -> bool:
        """No viewer has been in the room for the whole grace."""
        return self.empty_since is not None and now - self.empty_since >= self.grace_s

    def grace_deadline(self) -> float | None:
        """When the grace runs out (clock time), None while a viewer is here."""
        return None if self.empty_since is None else self.empty_since + self.grace_s

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if not is_viewer(participant):
            return
        self.viewers.add(participant.identity)
        self._update_empty()
        self._on_viewer_joined(participant.identity)
        self._wake.set()

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        self.viewers.discard(participant.identity)
        self._update_empty()
        self._on_participant_lost(participant.identity, "avatar_left", "left the room")
        self._wake.set()

    def _on_track_unpublished(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if publication.kind == rtc.TrackKind.KIND_VIDEO:
            self._on_participant_lost(
                participant.identity, "no_video", "stopped publishing its video"
            )

    def _on_room_disconnected(self, reason: Any = None) -> None:
        self._on_disconnected()

    def _update_empty(self) -> None:
        if self.viewers:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = self.clock()
