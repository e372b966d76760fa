"""When the reconciler looks at a room's host again: a pure schedule with an injected clock.

`reconciler.py` looks at a room (has it viewers? then `ensure_host`) when the room is due. What
makes a room due, and with which `Trigger`:

- `SWEEP`: `interval_s` after the room's last look, whatever happened (the safety net: a missed
  event, a dispatch that went stale, a page that rejoined after a LiveKit restart);
- `wake(room, now, trigger)`: our host left the room, its job ended, a viewer joined: look now;
- a room added by `set_rooms` (a new show): its first look is due at once, as at start;
- `WORKER`: a host worker registered with LiveKit (`worker_registered(now)`): every room,
  `worker_grace_s` from now (the decision replaces a jobless dispatch made before the
  registration once it is that old), whatever other looks come before, its backoff forgotten,
  since there is capacity now that there was not before.

What a look found (`record(room, outcome, now)`) sets the room's next look and its backoff:

| outcome | next look | backoff |
|---|---|---|
| `PRESENT`, `NO_VIEWERS`, `SHOW_ENDED` | the sweep | forgotten |
| `PENDING` (a dispatch on its way) | the sweep | kept |
| `DISPATCHED` | the sweep, or the backoff if later | one step longer |
| `FAILED` (LiveKit or Redis did not answer) | the backoff | one step longer |
| `BUSY` (another edge holds the room's lock) | `first_backoff_s` | kept |

The backoff starts at `first_backoff_s` and doubles up to `max_backoff_s`; while it runs, wakes
wait for it too (a worker registering is the exception), so a room whose hosts keep failing is
re-dispatched at a bounded rate, and keeps being tried at that rate: a host is never given up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Trigger(Enum):
    SWEEP = "sweep"
    WORKER = "worker"  # a host worker registered
    JOB_ENDED = "job_ended"  # a host.job "ended" event
    HOST_LEFT = "host_left"  # LiveKit's webhook: our host's participant left
    VIEWER_JOINED = "viewer_joined"  # LiveKit's webhook: a viewer joined (maybe with an old token)
    SHOW_STARTED = "show_started"  # an operator started the show again


class Outcome(Enum):
    PRESENT = "present"
    PENDING = "pending"
    DISPATCHED = "dispatched"
    NO_VIEWERS = "no_viewers"
    SHOW_ENDED = "show_ended"
    BUSY = "busy"
    FAILED = "failed"


@dataclass(frozen=True)
class ReconcilePolicy:
    interval_s: float
    worker_grace_s: float
    max_backoff_s: float
    first_backoff_s: float = 1.0


@dataclass
class _Room:
    due_at: float
    trigger: Trigger
    attempts: int = 0  # dispatches or failures since a host was last seen (or no viewers)
    not_before: float = 0.0  # the backoff: no look before this, except after a registration
    worker_at: float | None = None  # the look a registration asked for, kept apart: an earlier
    # look (a sweep, a wake) would find the stuck dispatch still in its grace


class ReconcileSchedule:
    """Per room: when to look next, why, and how far it is backing off."""

    def __init__(self, policy: ReconcilePolicy, rooms: Iterable[str], now: float) -> None:
        self.policy = policy
        self._rooms = {room: _Room(due_at=now, trigger=Trigger.SWEEP) for room in rooms}

    def due(self, now: float) -> list[tuple[str, Trigger]]:
        """The rooms to look at now, each with what made it due."""
        found = []
        for name, room in self._rooms.items():
            if room.worker_at is not None and room.worker_at <= now:
                found.append((name, Trigger.WORKER))
            elif room.due_at <= now:
                found.append((name, room.trigger))
        return found

    def next_wakeup(self) -> float:
        """When the next room is due (clock time); `inf` with no rooms."""
        times = [room.due_at for room in self._rooms.values()]
        times += [room.worker_at for room in self._rooms.values() if room.worker_at is not None]
        return min(times, default=float("inf"))

    def attempts(self, room: str) -> int:
        """Dispatches or failed looks in a row without a host (0 for an unknown room)."""
        state = self._rooms.get(room)
        return state.attempts if state else 0

    def backoff_s(self, attempts: int) -> float:
        """The wait after `attempts` dispatches or failures in a row (0 for none)."""
        if attempts <= 0:
            return 0.0
        policy = self.policy
        return min(policy.max_backoff_s, policy.first_backoff_s * 2.0 ** (attempts - 1))

    def rooms(self) -> frozenset[str]:
        return frozenset(self._rooms)

    def set_rooms(self, rooms: Iterable[str], now: float) -> None:
        """Serve exactly `rooms` from now on: a new one is looked at now, a gone one forgotten,
        the others keep their schedule and backoff."""
        wanted = list(dict.fromkeys(rooms))
        self._rooms = {
            room: self._rooms.get(room) or _Room(due_at=now, trigger=Trigger.SWEEP)
            for room in wanted
        }

    def wake(self, room: str, now: float, trigger: Trigger) -> None:
        """Look at `room` now (or when its backoff ends); rooms not scheduled are ignored."""
        state = self._rooms.get(room)
        if state is not None:
            at = max(now, state.not_before)
            if at < state.due_at:
                state.due_at = at
                state.trigger = trigger

    def worker_registered(self, now: float) -> None:
        """A worker registered: every room after the grace, backoff forgotten."""
        for state in self._rooms.values():
            state.attempts = 0
            state.not_before = now
            state.worker_at = now + self.policy.worker_grace_s

    def record(self, room: str, outcome: Outcome, now: float) -> None:
        """What a look at `room` found; sets its next look (see the module's table)."""
        state = self._rooms[room]
        if state.worker_at is not None and state.worker_at <= now:
            state.worker_at = None
        sweep = now + self.policy.interval_s
        if outcome in (Outcome.PRESENT, Outcome.NO_VIEWERS, Outcome.SHOW_ENDED):
            state.attempts = 0
            state.not_before = now
        elif outcome in (Outcome.DISPATCHED, Outcome.FAILED):
            state.attempts += 1
            state.not_before = now + self.backoff_s(state.attempts)
            sweep = state.not_before if outcome is Outcome.FAILED else max(sweep, state.not_before)
        elif outcome is Outcome.BUSY:
            sweep = now + self.policy.first_backoff_s
        state.due_at = sweep
        state.trigger = Trigger.SWEEP
