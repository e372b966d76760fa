"""One stage producer per show: a lease per room in a NATS KV bucket.

Every replica follows every room's presence, so each would run a loop for a room with viewers;
only the replica holding the room's lease does. The bucket (`stage-leases`) keeps one value per
room (the holder's identity) and forgets it `STAGE_LEASE_TTL_S` after its last write (the
bucket's max age), so:

- a replica that wants a room `create`s its key: that succeeds only while nobody holds it;
- the holder renews it every `STAGE_LEASE_RENEW_S` with `update(last=revision)`: a renewal that
  finds another revision means the lease was lost (it expired while this replica stalled and
  another took it), and the room's loop stops at once;
- a holder that dies (SIGKILL) stops renewing: its key expires after the TTL and the next
  `create` of another replica (each tries every renew interval) takes the room, so the show
  moves within TTL + renew interval (6 + 2 s by default; the issue's bound is 10 s);
- a graceful stop, or a room nobody watches any more, deletes the key (only at this replica's
  own revision), so the hand-over is immediate.

When NATS does not answer a renewal the lease is kept until its TTL has run out since the last
successful write (NATS has forgotten it by then; another replica may hold it), then dropped.

The bucket needs no per-message TTL support: its max age applies to the last write of each key,
and each renewal is a new write. Every replica applies the same TTL; the last one started wins
if they differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Set

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from livestage.ttl_bucket import ttl_bucket

log = logging.getLogger(__name__)

LEASE_BUCKET = "stage-leases"
RELEASE_WITHIN_S = 1.0  # a graceful stop's release of every lease held takes at most this

# What a lease operation may raise when NATS is slow or away (the lease is then unknown).
_UNANSWERED = (nats.errors.Error, TimeoutError, OSError)


def replica_identity() -> str:
    """Who holds a lease: host name, process id and a random part (a restarted process with the
    same pid in the same container is a different holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def lease_bucket(js: JetStreamContext, ttl_s: float, bucket: str = LEASE_BUCKET) -> KeyValue:
    """The lease bucket, created (or its TTL brought to `ttl_s`) if needed."""
    return await ttl_bucket(
        js, bucket, ttl_s, description="stage producer: which replica runs each room's loop"
    )


class RoomLeases:
    """The leases this replica holds and wants; `run` keeps them (see the module docstring).

    `want(rooms)` says which rooms this replica would run (the rooms with viewers); `holds(room)`
    whether it may. `on_change` is called (synchronously) whenever the held set changes."""

    def __init__(
        self,
        kv: KeyValue,
        *,
        ttl_s: float,
        renew_s: float,
        holder: str | None = None,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if renew_s >= ttl_s:
            raise ValueError(f"the renew interval ({renew_s} s) must be below the TTL ({ttl_s} s)")
        self.kv = kv
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.holder = holder or replica_identity()
        self.on_change = on_change
        self.clock = clock
        self._wanted: set[str] = set()
        self._held: dict[str, tuple[int, float]] = {}  # room -> (revision, renewed at)
        self._wake = asyncio.Event()

    def want(self, rooms: Set[str]) -> None:
        """Rooms this replica would run; the next round (started now) takes or releases."""
        if set(rooms) != self._wanted:
            self._wanted = set(rooms)
            self._wake.set()

    def holds(self, room: str) -> bool:
        return room in self._held

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    async def held_elsewhere(self, room: str) -> bool:
        """Whether another replica holds `room`'s lease now (the bucket says so). False when this
        replica holds it, nobody does (no viewers, or a dead holder's key lapsed) or NATS does
        not answer (the lease is unknown)."""
        if room in self._held:
            return False
        try:
            entry = await self.kv.get(room)
        except KeyNotFoundError:  # also a deleted (released) key
            return False
        except _UNANSWERED as error:
            log.debug("room %s: could not read the stage lease: %r", room, error)
            return False
        return entry.value is not None and entry.value != self.holder.encode()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every renew interval (or at once when the wanted rooms change) until `stop`;
        then every lease held is released."""
        try:
            while not stop.is_set():
                self._wake.clear()
                await self.round()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.renew_s):
                        await _first(self._wake, stop)
        finally:
            # Bounded: with NATS gone (stopping together with it) each delete would wait out its
            # timeout; the keys then lapse by their TTL instead.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RELEASE_WITHIN_S):
                    await self.release_all()

    async def round(self) -> None:
        """Renew what is held, release what is no longer wanted, try to take the rest."""
        before = set(self._held)
        for room in list(self._held):
            if room in self._wanted:
                await self._renew(room)
            else:
                await self._release(room)
        for room in sorted(self._wanted - set(self._held)):
            await self._take(room)
        if set(self._held) != before:
            self.on_change()

    async def release_all(self) -> None:
        """Delete every key this replica holds (a graceful stop hands its rooms over at once)."""
        had = bool(self._held)
        for room in list(self._held):
            await self._release(room)
        if had:
            self.on_change()

    async def _take(self, room: str) -> None:
        try:
            revision = await self.kv.create(room, self.holder.encode())
        except KeyWrongLastSequenceError:
            return  # another replica holds it
        except _UNANSWERED as error:
            log.debug("room %s: could not ask for the stage lease: %r", room, error)
            return
        self._held[room] = (revision, self.clock())
        log.info("room %s: stage lease taken by %s", room, self.holder)

    async def _renew(self, room: str) -> None:
        revision, renewed_at = self._held[room]
        try:
            revision = await self.kv.update(room, self.holder.encode(), last=revision)
        except KeyWrongLastSequenceError:
            del self._held[room]
            log.warning("room %s: stage lease lost (it expired; another replica may run it)", room)
            # Taken again at once below if nobody else has it (this round's `_take`).
            return
        except _UNANSWERED as error:
            if self.clock() - renewed_at >= self.ttl_s:
                del self._held[room]
                log.warning(
                    "room %s: stage lease dropped: NATS did not confirm it for %s s (%r)",
                    room, self.ttl_s, error,
                )  # fmt: skip
            return
        self._held[room] = (revision, self.clock())

    async def _release(self, room: str) -> None:
        revision, _ = self._held.pop(room)
        try:
            await self.kv.delete(room, last=revision)
            log.info("room %s: stage lease released by %s", room, self.holder)
        except KeyWrongLastSequenceError:
            pass  # no longer ours anyway
        except _UNANSWERED as error:
            log.info("room %s: stage lease left to expire (%r)", room, error)


async def _first(*events: asyncio.Event) -> None:
    """Return when any of `events` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
