"""A draining worker's `handover` command (`host_agent/handover.py`) as a job takes it: the job it
names ends with reason `shutdown`, at once when nothing is being said; other jobs carry on.

SIGTERM to a real worker process while the host speaks (the sentence finishes, a second worker
takes the show) is `tests/e2e/test_host_agent_process.py`.
"""

from __future__ import annotations

from host_agent.handover import handover_command, turn_budget_s
from livestage import subjects

from .conftest import Recorder, command, go_live, unique_room, until


def test_the_turn_under_way_gets_the_drain_less_the_jobs_own_end() -> None:
    assert turn_budget_s(20) == 17.0
    assert turn_budget_s(2) == 0.0


async def test_a_job_waiting_for_its_viewer_ends_at_once_when_handed_over(host_worker, bus) -> None:
    room = unique_room()
    recorder = await Recorder().start(bus, room)
    await host_worker.dispatch(room)
    started = await until(lambda: recorder.jobs, 15, "the job's start")
    await bus.publish(subjects.host_control(room), handover_command(room, started[0].job_id))
    ended = await until(recorder.ended, 15, "the job's end")
    # not `no_viewer`: it ended on the handover, before its viewer wait ran out
    assert ended.reason == "shutdown", ended
    assert recorder.job_events() == ["started", "ended"]


async def test_only_the_named_job_hands_over(host_worker, bus, viewers) -> None:
    room = unique_room()
    recorder, _ = await go_live(host_worker, bus, viewers, room)
    job_id = recorder.jobs[0].job_id

    await bus.publish(subjects.host_control(room), handover_command(room, "AJ_another-job"))
    words = "Still here, still talking."
    await bus.publish(subjects.host_control(room), command(room, "say", words))
    said = await until(lambda: recorder.spoken, 20, "the host to speak on")
    assert said[0].text == words

    await bus.publish(subjects.host_control(room), handover_command(room, job_id))
    ended = await until(recorder.ended, 15, "the job's end")
    assert ended.job_id == job_id and ended.reason == "shutdown", ended
