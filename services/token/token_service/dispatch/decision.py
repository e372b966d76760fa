"""Is the room's host here, on its way, or must it be (re)dispatched? A pure decision.

`decide(room, policy, now_ms)` takes what LiveKit (and our own host job events) say about a room
and returns what to do; `dispatcher.py` beside it does the I/O. What we learned from a real
livekit-server (v1.13.5) with a real livekit-agents (1.8.9) worker shapes the rules:

- **present**: only *our agent's own participant* counts: AGENT kind, and either carrying the
  attribute `lk.agent.name` = our agent name (livekit-agents sets it) or being the participant
  of one of our dispatches' jobs. An avatar participant (`avatar-host`, `anam-avatar-host`, or
  anything publishing on behalf of another, `lk.publish_on_behalf`) is AGENT kind too but is
  not the host; a leftover avatar must not keep the room hostless. A participant whose job has
  ended (by LiveKit or by our `host.job` events) is a ghost, not a host.
- **pending**: a dispatch younger than `stale_after_ms` with no job yet (LiveKit lists a job
  only a few seconds after the dispatch, and not at all while no worker is registered), a job
  that is pending, or a running job whose participant has not joined yet (`join_grace_ms`).
- **stale**: a dispatch that has had no job (or only a pending one) for `stale_after_ms`: no
  worker took it, and LiveKit will not hand it out later. Deleted and replaced. Sooner when a
  host worker registered after the dispatch was made (`worker_registered_at_ms`, from the
  workers' `host.worker` events): LiveKit offers a dispatch once, to the workers registered at
  that moment, so one made while none was (a deploy, a crash, a scale-down) never gets a job.
  Such a dispatch is replaced once it is `worker_grace_ms` old with still no job (the grace
  lets LiveKit list a job it did hand out, which takes it a moment).
- **ended**: every job of the dispatch finished (or a `host.job` event said so). Replaced.
- **crashed**: a job that failed, or a job LiveKit still calls running while its participant has
  been gone for longer than `join_grace_ms`. A SIGKILLed worker or job process never reports
  its end: LiveKit keeps such a job "running" indefinitely, and the ghost participant lingers
  for about 20 s before the server drops it. Deleted and replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from livestage.identity import AVATAR_IDENTITIES

AGENT_NAME_ATTRIBUTE = "lk.agent.name"
PUBLISH_ON_BEHALF_ATTRIBUTE = "lk.publish_on_behalf"


class JobStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Participant:
    identity: str
    is_agent: bool  # LiveKit's participant kind AGENT
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    participant_identity: str = ""
    started_at_ms: int = 0


@dataclass(frozen=True)
class Dispatch:
    id: str
    agent_name: str
    created_at_ms: int
    jobs: tuple[Job, ...] = ()


@dataclass(frozen=True)
class RoomState:
    participants: tuple[Participant, ...] = ()
    dispatches: tuple[Dispatch, ...] = ()
    ended_job_ids: frozenset[str] = frozenset()  # from host.job "ended" events
    worker_registered_at_ms: int = 0  # the last host.worker "registered" event (0: none heard)


@dataclass(frozen=True)
class HostPolicy:
    agent_name: str
    stale_after_ms: int
    join_grace_ms: int
    worker_grace_ms: int = 2000


class Cause(Enum):
    PRESENT = "present"
    PENDING = "pending"
    NO_DISPATCH = "no_dispatch"
    STALE = "stale"
    ENDED = "ended"
    CRASHED = "crashed"


@dataclass(frozen=True)
class Decision:
    cause: Cause
    delete: tuple[str, ...] = ()  # dispatch ids to delete before dispatching
    reason: str = ""

    @property
    def dispatch(self) -> bool:
        """True when a new dispatch must be created (after deleting `delete`)."""
        return self.cause not in (Cause.PRESENT, Cause.PENDING)


def _job_ended(job: Job, ended_job_ids: frozenset[str]) -> bool:
    return job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or job.id in ended_job_ids


def is_our_host(
    participant: Participant,
    agent_name: str,
    job_identities: frozenset[str],
    ghost_identities: frozenset[str],
) -> bool:
    """Our agent's own participant (not an avatar, not the ghost of an ended job)."""
    if not participant.is_agent or participant.identity in AVATAR_IDENTITIES:
        return False
    if participant.attributes.get(PUBLISH_ON_BEHALF_ATTRIBUTE):
        return False  # an avatar worker publishing for the agent
    if participant.identity in ghost_identities:
        return False
    return (
        participant.attributes.get(AGENT_NAME_ATTRIBUTE) == agent_name
        or participant.identity in job_identities
    )


def _missed_a_worker(dispatch: Dispatch, policy: HostPolicy, room: RoomState, now_ms: int) -> bool:
    """A jobless dispatch made before a worker registered: LiveKit will not offer it to it."""
    return (
        not dispatch.jobs
        and dispatch.created_at_ms < room.worker_registered_at_ms
        and now_ms - dispatch.created_at_ms >= policy.worker_grace_ms
    )


def _classify(
    dispatch: Dispatch, policy: HostPolicy, room: RoomState, now_ms: int
) -> tuple[Cause, str]:
    """PENDING, STALE, ENDED or CRASHED for one of our dispatches (its host is not present)."""
    ended_job_ids = room.ended_job_ids
    age_s = (now_ms - dispatch.created_at_ms) / 1000
    if not dispatch.jobs:
        if _missed_a_worker(dispatch, policy, room, now_ms):
            return Cause.STALE, (
                f"dispatch {dispatch.id} was made before a host worker registered and has had "
                f"no job for {age_s:.0f} s"
            )
        if now_ms - dispatch.created_at_ms < policy.stale_after_ms:
            return Cause.PENDING, f"dispatch {dispatch.id} is waiting for a worker"
        return Cause.STALE, f"dispatch {dispatch.id} has had no job for {age_s:.0f} s"
    causes: list[tuple[Cause, str]] = []
    for job in dispatch.jobs:
        if _job_ended(job, ended_job_ids):
            if job.status is JobStatus.FAILED:
                causes.append((Cause.CRASHED, f"job {job.id} failed"))
            else:
                causes.append((Cause.ENDED, f"job {job.id} ended"))
        elif job.status is JobStatus.PENDING:
            if now_ms - dispatch.created_at_ms < policy.stale_after_ms:
                return Cause.PENDING, f"job {job.id} is pending"
            causes.append((Cause.STALE, f"job {job.id} has been pending for {age_s:.0f} s"))
        else:  # running, but its participant is not in the room
            since = job.started_at_ms or dispatch.created_at_ms
            if now_ms - since < policy.join_grace_ms:
                return Cause.PENDING, f"job {job.id} is starting"
            causes.append(
                (Cause.CRASHED, f"job {job.id} is running without its participant in the room")
            )
    severity = {Cause.CRASHED: 0, Cause.STALE: 1, Cause.ENDED: 2}
    return min(causes, key=lambda cause: severity[cause[0]])


def decide(room: RoomState, policy: HostPolicy, now_ms: int) -> Decision:
    """What to do about the room's host; see the module docstring for every branch."""
    ours = [d for d in room.dispatches if d.agent_name == policy.agent_name]
    jobs = [job for dispatch in ours for job in dispatch.jobs]
    job_identities = frozenset(job.participant_identity for job in jobs if job.participant_identity)
    ghost_identities = frozenset(
        job.participant_identity
        for job in jobs
        if job.participant_identity and _job_ended(job, room.ended_job_ids)
    )
    for participant in room.participants:
        if is_our_host(participant, policy.agent_name, job_identities, ghost_identities):
            return Decision(Cause.PRESENT, reason=f"host {participant.identity} is in the room")
    if not ours:
        return Decision(Cause.NO_DISPATCH, reason="no host dispatch for this room")
    classified = [(dispatch, *_classify(dispatch, policy, room, now_ms)) for dispatch in ours]
    for _dispatch, cause, reason in classified:
        if cause is Cause.PENDING:
            return Decision(Cause.PENDING, reason=reason)
    severity = {Cause.CRASHED: 0, Cause.STALE: 1, Cause.ENDED: 2}
    _, worst, _ = min(classified, key=lambda item: severity[item[1]])
    return Decision(
        worst,
        delete=tuple(dispatch.id for dispatch, _, _ in classified),
        reason="; ".join(reason for _, _, reason in classified),
    )
