"""A host job whose worker died is reported ended at once, by the workers that are still alive.

A SIGKILLed worker (or a node lost with it) says nothing: LiveKit keeps calling its jobs
"running" and their participants linger in the rooms for about 20 s. Until then the edge would
count such a participant as the room's host, so the viewers of that show would wait 20-40 s for
a new one. Instead:

- every worker keeps one key per running job in the NATS KV bucket `host-jobs` (value: the room
  and the worker), written every `HOST_JOB_LIVENESS_RENEW_S`; the bucket forgets a key
  `HOST_JOB_LIVENESS_TTL_S` after its last write. A job that ends normally has its key deleted;
- every worker watches the bucket. nats-server (2.11+) leaves a marker when a key lapses; a
  worker that sees one for a job that is not its own publishes `host.job ended` with the reason
  `crashed` for that job's room (the same id from every worker, so JetStream stores it once);
- the edge treats that like any ended job: its participant is a ghost, the reconciler wakes and
  replaces the dispatch, and LiveKit hands the new one to a live worker.

When every worker died, nobody reports: the edge's own crash rule (`TOKEN_HOST_JOIN_GRACE_S`
after the ghost leaves) still brings the host back once a worker registers. A NATS older than
2.11 (no lapse markers) is logged once; the edge's rule applies then too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable

import nats.errors
from nats.js.errors import KeyValueLimitMarkerTTLNotSupportedError
from nats.js.kv import KV_PURGE, KeyValue

from livestage import subjects
from livestage.bus import Bus, BusUnavailable
from livestage.schemas import HostJobEvent, now_ms
from livestage.ttl_bucket import ttl_bucket

log = logging.getLogger(__name__)

JOBS_BUCKET = "host-jobs"
MARKER_TTL_S = 60.0  # how long a lapse marker stays (a watcher that reconnects still sees it)
_UNANSWERED = (nats.errors.Error, TimeoutError, OSError)

RunningJobs = Callable[[], dict[str, str]]
"""This worker's running jobs: job id → room."""


def crash_event_id(job_id: str) -> str:
    """The one id every worker gives the crash report of `job_id` (JetStream keeps it once)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"livestage:host-job-crashed:{job_id}").hex


def _safe_key(job_id: str) -> bool:
    return bool(job_id) and all(c.isalnum() or c in "-_=" for c in job_id)


class JobLiveness:
    """Keeps this worker's job keys and reports the jobs of workers that died."""

    def __init__(
        self,
        bus: Bus,
        kv: KeyValue,
        running: RunningJobs,
        *,
        worker: str,
        renew_s: float,
    ) -> None:
        self.bus = bus
        self.kv = kv
        self.running = running
        self.worker = worker
        self.renew_s = renew_s
        self.rooms: dict[str, str] = {}  # every job seen in the bucket → its room
        self._kept: dict[str, str] = {}  # this worker's jobs with a key → room

    @classmethod
    async def open(
        cls, bus: Bus, running: RunningJobs, *, worker: str, ttl_s: float, renew_s: float
    ) -> JobLiveness | None:
        try:
            kv = await ttl_bucket(
                bus.js,
                JOBS_BUCKET,
                ttl_s,
                description="host agent: one key per running host job, kept by its worker",
                marker_ttl_s=MARKER_TTL_S,
            )
        except KeyValueLimitMarkerTTLNotSupportedError:
            log.warning(
                "NATS is older than 2.11 (no markers when a key lapses): a show whose worker "
                "dies gets its host back by the edge's crash rule (TOKEN_HOST_JOIN_GRACE_S)"
            )
            return None
        return cls(bus, kv, running, worker=worker, renew_s=renew_s)

    async def run(self, stop: asyncio.Event) -> None:
        watcher = await self.kv.watchall()
        watching = asyncio.create_task(self._watch(watcher, stop))
        try:
            while not stop.is_set():
                await self.renew()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.renew_s):
                        await stop.wait()
        finally:
            watching.cancel()
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
            # A graceful stop: the jobs ended (or were handed over) and said so themselves.
            # Bounded: with NATS gone the keys lapse instead (and are reported crashed).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    for job_id in list(self._kept):
                        with contextlib.suppress(*_UNANSWERED):
                            await self.kv.delete(job_id)
            self._kept.clear()

    async def renew(self) -> None:
        """Write a key for each running job; delete the keys of jobs that ended."""
        running = {job: room for job, room in self.running().items() if _safe_key(job)}
        for job_id, room in running.items():
            value = json.dumps({"room": room, "worker": self.worker}).encode()
            try:
                await self.kv.put(job_id, value)
            except _UNANSWERED as error:
                log.debug("job %s: liveness key not written: %r", job_id, error)
                continue
            if job_id not in self._kept:
                log.info("job %s (room %s) runs on worker %s", job_id, room, self.worker)
            self._kept[job_id] = room
        for job_id in set(self._kept) - set(running):
            del self._kept[job_id]
            with contextlib.suppress(*_UNANSWERED):
                await self.kv.delete(job_id)  # a normal end: not a crash

    async def _watch(self, watcher: KeyValue.KeyWatcher, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                entry = await watcher.updates(timeout=1.0)  # type: ignore[no-untyped-call]
            except nats.errors.TimeoutError:
                continue
            if entry is None:
                continue  # the end of the initial values
            if entry.operation is None and entry.value:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.rooms[entry.key] = str(json.loads(entry.value)["room"])
            elif entry.operation == KV_PURGE:  # lapsed: its worker stopped writing it
                await self.lapsed(entry.key)
            else:
                self.rooms.pop(entry.key, None)  # deleted: the job ended normally

    async def lapsed(self, job_id: str) -> None:
        room = self.rooms.pop(job_id, None)
        if room is None or job_id in self._kept:
            return  # unknown here, or ours (this worker is alive: the key comes back)
        log.warning(
            "job %s of room %s: its worker stopped (key lapsed); reporting it", job_id, room
        )
        event = HostJobEvent(
            id=crash_event_id(job_id),
            room=room,
            job_id=job_id,
            event="ended",
            reason="crashed",
            created_at=now_ms(),
        )
        try:
            await self.bus.publish(subjects.host_job(room), event)
        except BusUnavailable as error:
            log.warning("job %s: the crash report was not stored: %s", job_id, error)
