"""Exactly one host agent per room, cheaply: the I/O around `decision.decide`.

`ensure_host(...)` first reads the room's cached host state from Redis (`HostCache`): while it
says "present" or "pending", a token request costs one Redis read and no LiveKit call, so a rush
of viewers costs Redis, not LiveKit. The cache is written by the decision below, by LiveKit
webhooks (our agent joined or left, the room finished) and by the host agent's `host.job.<room>`
events (a job started, went live or ended), and expires after `TOKEN_HOST_CACHE_TTL_S`. The
reconciler (`reconciler.py`) calls `ensure_host` too, for rooms with viewers, and skips the cache
(`fresh=True`) when an event says it may be wrong (a worker registered, a job ended).

On a miss, a room whose show an operator ended (`livestage.shows`) gets no host: one more Redis
read (a cached state never leads to a dispatch, so it is not needed before). Otherwise one
request per room takes a short Redis lock (the others answer at once: someone is deciding),
reads the room from LiveKit (participants and dispatches) plus the job ids our host agents
reported as ended, lets `decide()` choose, and acts: nothing, or delete the dead dispatches and
create one. Every LiveKit call is bounded (`LiveKitGateway`), and the whole decision is
bounded well inside the lock's lifetime, so a hung LiveKit cannot make a request outlive its lock
and let a second request dispatch at the same time. If a call that changes dispatches fails or
times out, the lock is left to expire instead of being released: that call may still land at
LiveKit, and nobody else should decide before it has.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from enum import Enum

from livekit import api
from livekit.protocol.agent import JobStatus as LkJobStatus
from livekit.protocol.models import ParticipantInfo
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from livestage import metrics
from livestage.schemas import now_ms
from livestage.shows import ShowStore
from livestage.subjects import check_room

from ..livekit_gateway import LiveKitGateway, LiveKitUnavailable
from .decision import (
    Cause,
    Dispatch,
    HostPolicy,
    Job,
    JobStatus,
    Participant,
    RoomState,
    decide,
)

log = logging.getLogger(__name__)

ENDED_JOBS_TTL_S = 3600


class HostState(Enum):
    PRESENT = "present"  # our agent's participant is in the room
    PENDING = "pending"  # a live dispatch exists (no job yet, pending, or starting)
    DISPATCHED = "dispatched"  # this call created the dispatch
    BUSY = "busy"  # another request holds the room's lock and is deciding
    SHOW_ENDED = "show_ended"  # an operator ended the show: no host until it starts again


@dataclass(frozen=True)
class DispatchMetadata:
    app: str
    avatar_model: str
    mode: str

    def to_json(self) -> str:
        return json.dumps({"app": self.app, "avatarModel": self.avatar_model, "mode": self.mode})


class HostCache:
    """The room's host state in Redis, with a short TTL, and the job ids reported ended."""

    def __init__(self, redis: Redis, room: str, ttl_s: float) -> None:
        self.redis = redis
        self.room = check_room(room)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.key = f"livestage:host:{room}"
        self.ended_key = f"livestage:host:ended-jobs:{room}"

    async def get(self) -> HostState | None:
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        return HostState(value) if value in ("present", "pending") else None

    async def set(self, state: HostState) -> None:
        if state in (HostState.PRESENT, HostState.PENDING):
            await self.redis.set(self.key, state.value, px=self.ttl_ms)

    async def forget(self) -> None:
        await self.redis.delete(self.key)

    async def job_ended(self, job_id: str) -> None:
        """A host job reported its end: LiveKit may keep calling it running for a while."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.ended_key, job_id)
            pipe.expire(self.ended_key, ENDED_JOBS_TTL_S)
            pipe.delete(self.key)
            await pipe.execute()

    async def ended_jobs(self) -> frozenset[str]:
        members = await self.redis.smembers(self.ended_key)
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)


class WorkerRegistrations:
    """When a host worker under `agent_name` last registered with LiveKit (epoch ms, as the edge
    heard its `host.worker` event), shared by the edge replicas through Redis."""

    def __init__(self, redis: Redis, agent_name: str) -> None:
        self.redis = redis
        self.key = f"livestage:host:worker-registered:{check_room(agent_name)}"

    async def registered(self, at_ms: int) -> None:
        await self.redis.set(self.key, at_ms, ex=ENDED_JOBS_TTL_S)

    async def last(self) -> int:
        raw = await self.redis.get(self.key)
        return int(raw) if raw is not None else 0


def epoch_ms(value: int) -> int:
    """LiveKit timestamps arrive in ns (dispatch and job times) or s/ms elsewhere: as ms."""
    if value > 10**17:
        return value // 1_000_000
    if value > 10**14:
        return value // 1_000
    if value > 10**11:
        return value
    return value * 1000


_JOB_STATUS = {
    LkJobStatus.JS_PENDING: JobStatus.PENDING,
    LkJobStatus.JS_RUNNING: JobStatus.RUNNING,
    LkJobStatus.JS_SUCCESS: JobStatus.SUCCEEDED,
    LkJobStatus.JS_FAILED: JobStatus.FAILED,
}


def room_state(
    participants: list[ParticipantInfo],
    dispatches: list[api.AgentDispatch],
    ended_job_ids: frozenset[str],
    worker_registered_at_ms: int = 0,
) -> RoomState:
    """LiveKit's protobufs as the decision's plain data."""
    return RoomState(
        participants=tuple(
            Participant(
                identity=p.identity,
                is_agent=p.kind == ParticipantInfo.Kind.AGENT,
                attributes=dict(p.attributes),
            )
            for p in participants
        ),
        dispatches=tuple(
            Dispatch(
                id=d.id,
                agent_name=d.agent_name,
                created_at_ms=epoch_ms(d.state.created_at),
                jobs=tuple(
                    Job(
                        id=j.id,
                        status=_JOB_STATUS.get(j.state.status, JobStatus.PENDING),
                        participant_identity=j.state.participant_identity,
                        started_at_ms=epoch_ms(j.state.started_at),
                    )
                    for j in d.state.jobs
                ),
            )
            for d in dispatches
        ),
        ended_job_ids=ended_job_ids,
        worker_registered_at_ms=worker_registered_at_ms,
    )


async def read_room(
    gateway: LiveKitGateway, cache: HostCache, workers: WorkerRegistrations
) -> RoomState:
    room = cache.room
    # Idempotent; the dispatch API only answers for a room that exists on some node.
    await gateway.call(
        "create_room", lambda lk: lk.room.create_room(api.CreateRoomRequest(name=room))
    )
    participants, dispatches, ended, registered = await asyncio.gather(
        gateway.call(
            "list_participants",
            lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
        ),
        gateway.call("list_dispatch", lambda lk: lk.agent_dispatch.list_dispatch(room)),
        cache.ended_jobs(),
        workers.last(),
    )
    return room_state(list(participants.participants), list(dispatches), ended, registered)


async def _delete_dispatch(gateway: LiveKitGateway, room: str, dispatch_id: str) -> None:
    await gateway.call(
        "delete_dispatch", lambda lk: lk.agent_dispatch.delete_dispatch(dispatch_id, room)
    )


async def ensure_host(
    gateway: LiveKitGateway,
    cache: HostCache,
    *,
    policy: HostPolicy,
    metadata: DispatchMetadata,
    lock_s: float,
    workers: WorkerRegistrations,
    trigger: str = "token",
    fresh: bool = False,
) -> HostState:
    """Make sure our host is in the room or on its way; see the module docstring. `trigger`
    names who asks (the metric's label); `fresh` skips the cached state."""
    if not fresh:
        cached = await cache.get()
        if cached is not None:
            return cached
    room = cache.room
    if (await ShowStore(cache.redis).get(room)).ended:
        return HostState.SHOW_ENDED
    lock = cache.redis.lock(f"livestage:dispatch-lock:{room}", timeout=lock_s, blocking=False)
    if not await lock.acquire():
        return HostState.BUSY
    changing = False
    try:
        # Decide well inside the lock's lifetime: never act on a lock that has expired.
        async with asyncio.timeout(lock_s * 0.8):
            decision = decide(await read_room(gateway, cache, workers), policy, now_ms())
            if decision.cause is Cause.PRESENT:
                await cache.set(HostState.PRESENT)
                return HostState.PRESENT
            if decision.cause is Cause.PENDING:
                await cache.set(HostState.PENDING)
                return HostState.PENDING
            changing = True
            for dispatch_id in decision.delete:
                log.info("room %s: deleting dispatch %s (%s)", room, dispatch_id, decision.reason)
                await _delete_dispatch(gateway, room, dispatch_id)
            created = await gateway.call(
                "create_dispatch",
                lambda lk: lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=policy.agent_name, room=room, metadata=metadata.to_json()
                    )
                ),
            )
            changing = False
            log.info(
                "room %s: dispatched host %s (%s; %s, asked by %s)",
                room,
                policy.agent_name,
                created.id,
                decision.cause.value,
                trigger,
            )
            metrics.counter(metrics.HOST_DISPATCHES).add(
                1, {"cause": decision.cause.value, "trigger": trigger}
            )
            await cache.set(HostState.PENDING)
            return HostState.DISPATCHED
    except TimeoutError as error:
        raise LiveKitUnavailable(
            f"deciding on the host of room {room} took longer than {lock_s * 0.8:g} s"
        ) from error
    finally:
        if changing:
            log.warning(
                "room %s: a dispatch change failed mid-way; the dispatch lock expires on its "
                "own in %g s",
                room,
                lock_s,
            )
        else:
            try:
                await lock.release()
            except (LockError, RedisError) as error:
                log.warning("dispatch lock of room %s not released: %r", room, error)
