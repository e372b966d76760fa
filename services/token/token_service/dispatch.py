"""Exactly one host agent per room.

`ensure_host(...)` holds a short Redis lock per room, then looks at the room's agent dispatches
and its AGENT-kind participants, and only if no host is in the room or on its way does it call
`create_dispatch`. A dispatch counts as "on its way" while it has no job yet (no worker took
it) or a job that is pending or running; a dispatch whose jobs all ended is deleted and
replaced. Refreshes, many tabs and a rush of viewers therefore make one dispatch, not many.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import Enum

from livekit import api
from livekit.protocol.agent import JobStatus
from livekit.protocol.models import ParticipantInfo
from redis.asyncio import Redis
from redis.exceptions import LockError

log = logging.getLogger(__name__)

ACTIVE_JOB_STATES = (JobStatus.JS_PENDING, JobStatus.JS_RUNNING)


class HostState(Enum):
    PRESENT = "present"  # an AGENT-kind participant is in the room
    ON_ITS_WAY = "on_its_way"  # a live dispatch exists
    DISPATCHED = "dispatched"  # this call created the dispatch
    BUSY = "busy"  # another request holds the room's lock and is deciding


@dataclass(frozen=True)
class DispatchMetadata:
    app: str
    avatar_model: str
    mode: str

    def to_json(self) -> str:
        return json.dumps({"app": self.app, "avatarModel": self.avatar_model, "mode": self.mode})


def dispatch_is_live(dispatch: api.AgentDispatch) -> bool:
    jobs = list(dispatch.state.jobs)
    return not jobs or any(job.state.status in ACTIVE_JOB_STATES for job in jobs)


async def ensure_host(
    lkapi: api.LiveKitAPI,
    redis: Redis,
    *,
    room: str,
    agent_name: str,
    metadata: DispatchMetadata,
    lock_s: float,
) -> HostState:
    lock = redis.lock(f"livestage:dispatch-lock:{room}", timeout=lock_s, blocking=False)
    if not await lock.acquire():
        return HostState.BUSY
    try:
        # Idempotent; the dispatch API only answers for a room that exists on some node.
        await lkapi.room.create_room(api.CreateRoomRequest(name=room))
        participants = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        if any(p.kind == ParticipantInfo.Kind.AGENT for p in participants.participants):
            return HostState.PRESENT
        dispatches = [
            d for d in await lkapi.agent_dispatch.list_dispatch(room) if d.agent_name == agent_name
        ]
        if any(dispatch_is_live(d) for d in dispatches):
            return HostState.ON_ITS_WAY
        for stale in dispatches:
            log.info("removing ended dispatch %s of room %s", stale.id, room)
            await lkapi.agent_dispatch.delete_dispatch(stale.id, room)
        created = await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=agent_name, room=room, metadata=metadata.to_json()
            )
        )
        log.info("dispatched host %s to room %s (%s)", agent_name, room, created.id)
        return HostState.DISPATCHED
    finally:
        try:
            await lock.release()
        except LockError:
            log.warning("dispatch lock of room %s expired before release", room)
