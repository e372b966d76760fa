"""The host reconciler: a room with viewers and no host job gets one, without a token request.

A token request dispatches the host (`ensure_host`), but nothing asks again for a viewer who is
already in the room: LiveKit offers a dispatch once, to the workers registered at that moment,
so a dispatch made while no worker was (workers restarting: a deploy, a crash, a scale-down) sits
jobless, and a page that rejoins after a LiveKit restart asks for no new token. The reconciler
runs in every edge replica and looks at each of its rooms when `schedule.py` says so (a sweep
every `TOKEN_RECONCILE_INTERVAL_S`; at once when our host leaves or its job ends or a viewer
joins; `TOKEN_DISPATCH_WORKER_GRACE_S` after a host worker announces its registration on
`host.worker.<agent name>`). A look believes the cached host state while it holds (except
after events that may make it wrong, `FRESH_TRIGGERS`), else lists the room's participants (one
bounded LiveKit call); with a viewer in it, `ensure_host` decides and acts under the room's
Redis lock, so two replicas looking at once still make one dispatch. Re-dispatches and failures
back off per room (`schedule.py`).

Its rooms are every show's (`ShowStore.rooms()`), read again at each sweep interval, at once
when this replica changes a show (`shows_changed`), and when something wakes a room it does not
serve yet (a show another replica created): that wake is kept and applied once the room is
known to be a show, so a webhook for a room that is no show never dispatches a host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from redis.exceptions import RedisError

from ..livekit_gateway import LiveKitError, LiveKitGateway
from .decision import HostPolicy
from .dispatcher import DispatchMetadata, HostCache, HostState, WorkerRegistrations, ensure_host
from .schedule import Outcome, ReconcilePolicy, ReconcileSchedule, Trigger

log = logging.getLogger(__name__)

_OUTCOMES = {
    HostState.PRESENT: Outcome.PRESENT,
    HostState.PENDING: Outcome.PENDING,
    HostState.DISPATCHED: Outcome.DISPATCHED,
    HostState.BUSY: Outcome.BUSY,
    HostState.SHOW_ENDED: Outcome.SHOW_ENDED,
}
FRESH_TRIGGERS = frozenset(
    {Trigger.WORKER, Trigger.JOB_ENDED, Trigger.HOST_LEFT, Trigger.SHOW_STARTED}
)
"""Events after which the cached host state may be wrong: those looks ask LiveKit. Other looks
(a sweep, a viewer joining: many at once in a rush) believe the cache while it holds."""
MAX_PENDING_WAKES = 1000
"""Wakes for rooms not (yet) known as shows kept until the next read of the show list."""
WARN_AFTER_ATTEMPTS = 4
"""Re-dispatches (or failed looks) in a row without a host after which each one is a warning."""


class HostReconciler:
    """Looks after the host of each show's room (see the module docstring): `rooms` lists them
    (`ShowStore.rooms`), `cache_for` gives a room's cached host state."""

    def __init__(
        self,
        *,
        gateway: LiveKitGateway,
        rooms: Callable[[], Awaitable[Sequence[str]]],
        cache_for: Callable[[str], HostCache],
        workers: WorkerRegistrations,
        policy: HostPolicy,
        metadata: DispatchMetadata,
        lock_s: float,
        schedule: ReconcilePolicy,
        initial_rooms: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.rooms = rooms
        self.cache_for = cache_for
        self.workers = workers
        self.policy = policy
        self.metadata = metadata
        self.lock_s = lock_s
        self.clock = clock
        self.refresh_s = schedule.interval_s
        self.schedule = ReconcileSchedule(schedule, initial_rooms, clock())
        self._refresh_at = clock()  # read the show list before the first look
        self._pending: dict[str, Trigger] = {}
        self._woken = asyncio.Event()

    def wake(self, room: str, trigger: Trigger) -> None:
        """Look at `room` now (or when its backoff ends); a room not served yet is looked at
        once the show list (read now) says it is a show."""
        if room in self.schedule.rooms():
            self.schedule.wake(room, self.clock(), trigger)
        elif len(self._pending) < MAX_PENDING_WAKES:
            self._pending[room] = trigger
            self._refresh_at = self.clock()
        self._woken.set()

    def shows_changed(self) -> None:
        """A show was created, started or deleted: read the show list now."""
        self._refresh_at = self.clock()
        self._woken.set()

    def worker_registered(self) -> None:
        """A host worker registered: look at every room once the dispatch grace has passed."""
        self.schedule.worker_registered(self.clock())
        self._woken.set()

    async def run(self) -> None:
        """Look at each room when it is due, until cancelled."""
        while True:
            self._woken.clear()  # before looking: a wake during a look is not lost
            if self._refresh_at <= self.clock():
                await self._refresh_rooms()
            for room, trigger in self.schedule.due(self.clock()):
                outcome = await self.look(room, trigger)
                self.schedule.record(room, outcome, self.clock())
            wait_s = min(self.schedule.next_wakeup(), self._refresh_at) - self.clock()
            if wait_s > 0:
                try:
                    async with asyncio.timeout(wait_s):
                        await self._woken.wait()
                except TimeoutError:
                    pass

    async def _refresh_rooms(self) -> None:
        """Serve every show's room; on a Redis error keep the rooms it had and try again soon."""
        try:
            rooms = await self.rooms()
        except (RedisError, OSError) as error:
            log.warning("the show list was not read (%r); trying again in 1 s", error)
            self._refresh_at = self.clock() + 1.0
            return
        now = self.clock()
        self.schedule.set_rooms(rooms, now)
        pending, self._pending = self._pending, {}
        for room, trigger in pending.items():
            self.schedule.wake(room, now, trigger)  # ignored for a room that is no show
        self._refresh_at = now + self.refresh_s

    async def look(self, room: str, trigger: Trigger) -> Outcome:
        """One look at `room`: no viewers, or what `ensure_host` did; never raises."""
        fresh = trigger in FRESH_TRIGGERS
        cache = self.cache_for(room)
        try:
            if not fresh and (cached := await cache.get()) is not None:
                return _OUTCOMES[cached]
            if not await self._has_viewers(room):
                return Outcome.NO_VIEWERS
            state = await ensure_host(
                self.gateway,
                cache,
                policy=self.policy,
                metadata=self.metadata,
                lock_s=self.lock_s,
                workers=self.workers,
                trigger=trigger.value,
                fresh=fresh,
            )
        except (LiveKitError, RedisError, OSError) as error:
            self._warn(room, f"host not checked ({error})", Outcome.FAILED)
            return Outcome.FAILED
        except Exception:  # noqa: BLE001 - the loop must outlive any one look; logged in full
            log.exception("room %s: reconciling its host failed", room)
            return Outcome.FAILED
        outcome = _OUTCOMES[state]
        if outcome is Outcome.DISPATCHED:
            self._warn(room, f"re-dispatched its host for its viewers ({trigger.value})", outcome)
        return outcome

    async def _has_viewers(self, room: str) -> bool:
        return await self.gateway.count_viewers(room) > 0

    def _warn(self, room: str, what: str, outcome: Outcome) -> None:
        """Log a re-dispatch or a failure; a warning once they keep coming without a host."""
        attempts = self.schedule.attempts(room) + 1
        retry_s = self.schedule.backoff_s(attempts)
        level = logging.WARNING if attempts >= WARN_AFTER_ATTEMPTS else logging.INFO
        if outcome is Outcome.FAILED:
            level = logging.WARNING
        log.log(
            level,
            "room %s: %s; %d in a row without a host, next try in %g s at the earliest",
            room,
            what,
            attempts,
            retry_s,
        )
