"""`PauseRelease`: when a held pause releases the paid sessions (pure, a plain clock)."""

from __future__ import annotations

from host_agent.release import PauseRelease


def test_a_pause_held_for_the_release_time_is_due() -> None:
    release = PauseRelease(60)
    assert release.deadline() is None and not release.due(1000, speaking=False)
    release.paused(100)
    release.paused(130)  # a second pause does not restart the count
    assert release.deadline() == 160
    assert not release.due(159.9, speaking=False)
    assert release.due(160, speaking=False)


def test_not_while_a_turn_is_heard_and_a_say_starts_the_count_again() -> None:
    release = PauseRelease(60)
    release.paused(100)
    assert not release.due(170, speaking=True)  # a `say` is being heard: its end asks again
    release.spoke(150)
    assert release.deadline() == 210 and not release.due(200, speaking=False)


def test_resume_and_zero_mean_no_release() -> None:
    release = PauseRelease(60)
    release.paused(100)
    release.resumed()
    assert release.deadline() is None and not release.due(1000, speaking=False)
    release.spoke(200)  # speaking while not paused starts nothing
    assert release.deadline() is None
    never = PauseRelease(0)
    never.paused(100)
    assert never.deadline() is None and not never.due(10**9, speaking=False)
