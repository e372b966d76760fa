"""The reconciler's schedule, rule by rule (pure: a fake clock, no I/O)."""

from __future__ import annotations

import pytest

from token_service.dispatch.schedule import (
    Outcome,
    ReconcilePolicy,
    ReconcileSchedule,
    Trigger,
)

POLICY = ReconcilePolicy(interval_s=5, worker_grace_s=2, max_backoff_s=16, first_backoff_s=1)
ROOM = "room-1"


def schedule(now: float = 100.0) -> ReconcileSchedule:
    return ReconcileSchedule(POLICY, [ROOM], now)


def test_every_room_is_looked_at_when_the_edge_starts_then_every_interval() -> None:
    plan = schedule()
    assert plan.due(100) == [(ROOM, Trigger.SWEEP)]
    plan.record(ROOM, Outcome.PRESENT, 100)
    assert plan.due(104.9) == []
    assert plan.next_wakeup() == 105
    assert plan.due(105) == [(ROOM, Trigger.SWEEP)]


def test_a_wake_brings_the_look_forward_with_its_trigger() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.PENDING, 100)
    plan.wake(ROOM, 101, Trigger.JOB_ENDED)
    assert plan.due(101) == [(ROOM, Trigger.JOB_ENDED)]
    assert plan.next_wakeup() == 101


def test_wakes_for_rooms_it_does_not_serve_are_ignored() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.PRESENT, 100)
    plan.wake("other", 101, Trigger.VIEWER_JOINED)
    assert plan.due(101) == [] and plan.next_wakeup() == 105


def test_re_dispatches_back_off_doubling_up_to_the_cap() -> None:
    plan = schedule()
    now = 100.0
    waits = []
    for _ in range(7):
        plan.record(ROOM, Outcome.DISPATCHED, now)
        # a wake (the new host's job ended at once) waits for the backoff
        plan.wake(ROOM, now, Trigger.JOB_ENDED)
        waits.append(plan.next_wakeup() - now)
        now = plan.next_wakeup()
    assert waits == [1, 2, 4, 8, 16, 16, 16]
    assert plan.attempts(ROOM) == 7


def test_without_wakes_a_dispatch_is_checked_at_the_sweep_or_after_the_backoff() -> None:
    plan = schedule()
    for attempt, wait in ((1, 5), (2, 5), (3, 5), (4, 8), (5, 16)):
        plan.record(ROOM, Outcome.DISPATCHED, 100)
        assert plan.attempts(ROOM) == attempt
        assert plan.next_wakeup() - 100 == wait


def test_failures_retry_after_the_backoff_not_the_sweep() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.FAILED, 100)
    assert plan.due(101) == [(ROOM, Trigger.SWEEP)]
    plan.record(ROOM, Outcome.FAILED, 101)
    assert plan.next_wakeup() == 103


@pytest.mark.parametrize("outcome", [Outcome.PRESENT, Outcome.NO_VIEWERS])
def test_a_host_or_an_empty_room_forgets_the_backoff(outcome: Outcome) -> None:
    plan = schedule()
    for _ in range(4):
        plan.record(ROOM, Outcome.DISPATCHED, 100)
    plan.record(ROOM, outcome, 100)
    assert plan.attempts(ROOM) == 0
    plan.wake(ROOM, 101, Trigger.VIEWER_JOINED)
    assert plan.due(101) == [(ROOM, Trigger.VIEWER_JOINED)]


def test_pending_keeps_the_backoff() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.DISPATCHED, 100)
    plan.record(ROOM, Outcome.DISPATCHED, 100)
    plan.record(ROOM, Outcome.PENDING, 101)
    assert plan.attempts(ROOM) == 2
    plan.wake(ROOM, 101.5, Trigger.HOST_LEFT)
    assert plan.due(101.5) == []  # the backoff of 2 s from 100
    assert plan.due(102) == [(ROOM, Trigger.HOST_LEFT)]


def test_busy_retries_soon_without_counting() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.BUSY, 100)
    assert plan.next_wakeup() == 101 and plan.attempts(ROOM) == 0


def test_a_worker_registering_looks_after_the_grace_and_forgets_the_backoff() -> None:
    plan = schedule()
    for _ in range(5):
        plan.record(ROOM, Outcome.DISPATCHED, 100)  # backing off 16 s
    plan.worker_registered(101)
    assert plan.attempts(ROOM) == 0
    assert plan.due(102.9) == []
    assert plan.next_wakeup() == 103
    assert plan.due(103) == [(ROOM, Trigger.WORKER)]


def test_an_earlier_look_does_not_use_up_the_worker_look() -> None:
    # a sweep (or a viewer) before the grace ends finds the stuck dispatch still in its grace:
    # the look the registration asked for must still come
    plan = schedule()
    plan.record(ROOM, Outcome.PENDING, 98)  # the sweep is due at 103
    plan.worker_registered(102)  # the worker look is due at 104
    plan.wake(ROOM, 102.5, Trigger.VIEWER_JOINED)
    assert plan.due(102.5) == [(ROOM, Trigger.VIEWER_JOINED)]
    plan.record(ROOM, Outcome.PENDING, 102.5)
    assert plan.next_wakeup() == 104
    assert plan.due(104) == [(ROOM, Trigger.WORKER)]
    plan.record(ROOM, Outcome.DISPATCHED, 104)
    assert plan.due(104.5) == []  # used up now
    assert plan.next_wakeup() == 109


def test_a_later_registration_moves_the_worker_look() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.PENDING, 100)
    plan.worker_registered(101)
    plan.worker_registered(102)
    assert plan.due(103.5) == []
    assert plan.due(104) == [(ROOM, Trigger.WORKER)]


def test_a_new_show_is_looked_at_at_once_and_a_deleted_one_is_forgotten() -> None:
    plan = schedule()
    plan.record(ROOM, Outcome.DISPATCHED, 100)  # backing off
    plan.set_rooms([ROOM, "quiz"], 101)
    assert plan.due(101) == [("quiz", Trigger.SWEEP)]
    assert plan.attempts(ROOM) == 1  # the rooms it had keep their schedule and backoff
    plan.set_rooms(["quiz"], 102)
    assert plan.rooms() == frozenset({"quiz"})
    plan.wake(ROOM, 103, Trigger.JOB_ENDED)  # no longer a show: ignored
    assert all(room == "quiz" for room, _ in plan.due(200))
