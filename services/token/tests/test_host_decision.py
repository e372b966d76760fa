"""The host decision, branch by branch (pure: no I/O, a fixed clock)."""

from __future__ import annotations

import pytest

from token_service.dispatch.decision import (
    Cause,
    Dispatch,
    HostPolicy,
    Job,
    JobStatus,
    Participant,
    RoomState,
    decide,
)
from token_service.dispatch.dispatcher import epoch_ms

NOW = 1_800_000_000_000
POLICY = HostPolicy(agent_name="host", stale_after_ms=30_000, join_grace_ms=15_000)
OUR_ATTRIBUTES = {"lk.agent.name": "host"}


def dispatch(*jobs: Job, id: str = "AD_1", agent: str = "host", age_s: float = 1) -> Dispatch:
    return Dispatch(id=id, agent_name=agent, created_at_ms=NOW - int(age_s * 1000), jobs=jobs)


def job(
    status: JobStatus, *, id: str = "AJ_1", who: str = "agent-AJ_1", started_s_ago: float = 1
) -> Job:
    return Job(
        id=id,
        status=status,
        participant_identity=who,
        started_at_ms=NOW - int(started_s_ago * 1000),
    )


def agent(identity: str = "agent-AJ_1", **attributes: str) -> Participant:
    return Participant(identity=identity, is_agent=True, attributes=attributes or OUR_ATTRIBUTES)


VIEWER = Participant(identity="viewer_0123456789abcdef_00aa11bb", is_agent=False)
AVATAR = Participant(
    identity="avatar-host", is_agent=True, attributes={"lk.publish_on_behalf": "agent-AJ_1"}
)


def test_present_when_our_agent_is_in_the_room() -> None:
    room = RoomState(participants=(VIEWER, agent()), dispatches=(dispatch(job(JobStatus.RUNNING)),))
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.PRESENT and not decision.dispatch and decision.delete == ()
    assert "agent-AJ_1" in decision.reason


def test_present_by_job_identity_even_without_the_name_attribute() -> None:
    room = RoomState(
        participants=(Participant("agent-AJ_7", is_agent=True),),
        dispatches=(dispatch(job(JobStatus.RUNNING, id="AJ_7", who="agent-AJ_7")),),
    )
    assert decide(room, POLICY, NOW).cause is Cause.PRESENT


@pytest.mark.parametrize(
    "participant",
    [
        AVATAR,
        Participant("anam-avatar-host", is_agent=True, attributes=OUR_ATTRIBUTES),
        Participant("avatar-host", is_agent=True),
        agent("agent-other", **{"lk.agent.name": "someone-elses-agent"}),
        Participant("agent-AJ_1", is_agent=False, attributes=OUR_ATTRIBUTES),  # not AGENT kind
    ],
)
def test_avatars_and_other_agents_are_not_our_host(participant: Participant) -> None:
    decision = decide(RoomState(participants=(VIEWER, participant)), POLICY, NOW)
    assert decision.cause is Cause.NO_DISPATCH and decision.dispatch


def test_no_dispatch_dispatches() -> None:
    decision = decide(RoomState(participants=(VIEWER,)), POLICY, NOW)
    assert decision.cause is Cause.NO_DISPATCH and decision.dispatch and decision.delete == ()


def test_other_agents_dispatches_are_ignored() -> None:
    room = RoomState(dispatches=(dispatch(id="AD_x", agent=""), dispatch(id="AD_y", agent="x")))
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.NO_DISPATCH and decision.delete == ()


@pytest.mark.parametrize(
    ("room", "fragment"),
    [
        (RoomState(dispatches=(dispatch(age_s=29),)), "waiting for a worker"),
        (RoomState(dispatches=(dispatch(job(JobStatus.PENDING), age_s=29),)), "pending"),
        (RoomState(dispatches=(dispatch(job(JobStatus.RUNNING, started_s_ago=14)),)), "starting"),
    ],
)
def test_pending_waits(room: RoomState, fragment: str) -> None:
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.PENDING and not decision.dispatch and decision.delete == ()
    assert fragment in decision.reason


@pytest.mark.parametrize(
    "stale",
    [dispatch(age_s=31), dispatch(job(JobStatus.PENDING), age_s=31)],
)
def test_stale_dispatch_is_deleted_and_replaced(stale: Dispatch) -> None:
    decision = decide(RoomState(participants=(VIEWER,), dispatches=(stale,)), POLICY, NOW)
    assert decision.cause is Cause.STALE and decision.dispatch and decision.delete == ("AD_1",)


def test_a_jobless_dispatch_made_before_a_worker_registered_is_replaced_after_the_grace() -> None:
    # made 3 s ago while no worker was registered; a worker registered 1 s after it
    stuck = RoomState(dispatches=(dispatch(age_s=3),), worker_registered_at_ms=NOW - 2000)
    decision = decide(stuck, POLICY, NOW)
    assert decision.cause is Cause.STALE and decision.dispatch and decision.delete == ("AD_1",)
    assert "before a host worker registered" in decision.reason


@pytest.mark.parametrize(
    ("room", "why"),
    [
        # LiveKit may still be listing the job it handed to a worker registered earlier
        (RoomState(dispatches=(dispatch(age_s=1.5),), worker_registered_at_ms=NOW), "in grace"),
        # made after the registration: LiveKit offered it to that worker
        (RoomState(dispatches=(dispatch(age_s=3),), worker_registered_at_ms=NOW - 4000), "after"),
        # a job came: the worker rule is about jobless dispatches only
        (
            RoomState(
                dispatches=(dispatch(job(JobStatus.PENDING), age_s=3),),
                worker_registered_at_ms=NOW - 1000,
            ),
            "job",
        ),
        (RoomState(dispatches=(dispatch(age_s=3),)), "no worker heard of"),
    ],
)
def test_the_worker_rule_leaves_other_young_dispatches_pending(room: RoomState, why: str) -> None:
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.PENDING and decision.delete == (), why


def test_ended_dispatch_is_replaced() -> None:
    room = RoomState(dispatches=(dispatch(job(JobStatus.SUCCEEDED), age_s=600),))
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.ENDED and decision.delete == ("AD_1",)


def test_a_job_our_events_said_ended_counts_as_ended_and_its_ghost_is_no_host() -> None:
    room = RoomState(
        participants=(agent(),),  # LiveKit has not dropped the participant yet
        dispatches=(dispatch(job(JobStatus.RUNNING), age_s=600),),
        ended_job_ids=frozenset({"AJ_1"}),
    )
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.ENDED and decision.delete == ("AD_1",)


@pytest.mark.parametrize(
    ("crashed", "fragment"),
    [
        (dispatch(job(JobStatus.FAILED), age_s=60), "failed"),
        # SIGKILLed worker: LiveKit keeps the job "running", its participant is gone
        (dispatch(job(JobStatus.RUNNING, started_s_ago=16), age_s=60), "without its participant"),
    ],
)
def test_crashed_job_is_replaced(crashed: Dispatch, fragment: str) -> None:
    decision = decide(RoomState(participants=(VIEWER, AVATAR), dispatches=(crashed,)), POLICY, NOW)
    assert decision.cause is Cause.CRASHED and decision.delete == ("AD_1",)
    assert fragment in decision.reason


def test_one_live_dispatch_among_dead_ones_means_pending() -> None:
    room = RoomState(
        dispatches=(
            dispatch(job(JobStatus.SUCCEEDED), id="AD_old", age_s=900),
            dispatch(id="AD_new", age_s=2),
        )
    )
    assert decide(room, POLICY, NOW).cause is Cause.PENDING


def test_every_dead_dispatch_is_deleted_and_the_worst_cause_reported() -> None:
    room = RoomState(
        dispatches=(
            dispatch(job(JobStatus.SUCCEEDED), id="AD_a", age_s=900),
            dispatch(id="AD_b", age_s=90),
            dispatch(job(JobStatus.FAILED, id="AJ_c"), id="AD_c", age_s=90),
        )
    )
    decision = decide(room, POLICY, NOW)
    assert decision.cause is Cause.CRASHED
    assert decision.delete == ("AD_a", "AD_b", "AD_c")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_795_579_579_264_421_966, 1_795_579_579_264),  # ns, as LiveKit sends dispatch times
        (1_795_579_579_264_421, 1_795_579_579_264),  # us
        (1_795_579_579_264, 1_795_579_579_264),  # ms
        (1_795_579_579, 1_795_579_579_000),  # s
    ],
)
def test_livekit_timestamps_become_ms(raw: int, expected: int) -> None:
    assert epoch_ms(raw) == expected
