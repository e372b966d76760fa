"""Which rooms have viewers: folded from `room.presence` and `host.job` events. Pure.

A room is active while at least one viewer (a STANDARD participant named `viewer_...`) is in
it, or while its host job says it is live (a viewer came) and has not ended. Webhooks can be
missing (no webhook URL configured), so either source alone is enough; `room_finished` and a
job's `ended` clear the room. A room whose show an operator ended (`ShowEvent` ended) is inactive
whatever its viewers, until the show is `live` again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livestage.identity import is_viewer_identity
from livestage.schemas import HostJobEvent, PresenceEvent, ShowEvent


@dataclass
class _Room:
    viewers: set[str] = field(default_factory=set)
    live_jobs: set[str] = field(default_factory=set)
    ended: bool = False


class RoomTracker:
    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}

    def _room(self, name: str) -> _Room:
        return self._rooms.setdefault(name, _Room())

    def apply_presence(self, event: PresenceEvent) -> None:
        room = self._room(event.room)
        viewer = is_viewer_identity(event.identity) and event.participant_kind in ("", "standard")
        if event.event == "participant_joined" and viewer:
            room.viewers.add(event.identity)
        elif event.event == "participant_left":
            room.viewers.discard(event.identity)
        elif event.event == "room_finished":
            room.viewers.clear()
            room.live_jobs.clear()

    def apply_job(self, event: HostJobEvent) -> None:
        room = self._room(event.room)
        if event.event == "live":
            room.live_jobs.add(event.job_id)
        elif event.event == "ended":
            room.live_jobs.discard(event.job_id)
            if event.reason in ("viewers_left", "no_viewer"):
                room.viewers.clear()

    def apply_show(self, event: ShowEvent) -> None:
        self._room(event.room).ended = event.state == "ended"

    def show_ended(self, room: str) -> bool:
        state = self._rooms.get(room)
        return state is not None and state.ended

    def is_active(self, room: str) -> bool:
        state = self._rooms.get(room)
        return state is not None and not state.ended and bool(state.viewers or state.live_jobs)

    def active_rooms(self) -> set[str]:
        return {name for name in self._rooms if self.is_active(name)}

    def total_viewers(self) -> int:
        """Viewers in every room, as far as presence events told (0 without webhooks)."""
        return sum(len(state.viewers) for state in self._rooms.values())

    def viewers(self, room: str) -> int:
        state = self._rooms.get(room)
        return len(state.viewers) if state else 0
