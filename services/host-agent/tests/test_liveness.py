"""Job liveness keys (`host_agent.liveness`) on a real nats-server: a job whose worker stops
writing its key is reported crashed by another worker, once; a job that ends normally is not."""

from __future__ import annotations

import asyncio
import time
import uuid

from host_agent.liveness import MARKER_TTL_S, JobLiveness, crash_event_id
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import HostJobEvent
from livestage.ttl_bucket import ttl_bucket
from tests.support.waiting import Changed, until

TTL_S = 1.0


async def test_a_lapsed_job_is_reported_crashed_once_and_an_ended_one_not_at_all(bus: Bus) -> None:
    room = "liveness-" + uuid.uuid4().hex[:8]
    kv = await ttl_bucket(
        bus.js, "test-jobs-" + uuid.uuid4().hex[:8], TTL_S, description="test",
        marker_ttl_s=MARKER_TTL_S,
    )  # fmt: skip
    dead_jobs = {"AJ_dead" + uuid.uuid4().hex[:6]: room, "AJ_done" + uuid.uuid4().hex[:6]: room}
    dead, done = list(dead_jobs)
    dying = JobLiveness(bus, kv, lambda: dict(dead_jobs), worker="w1", renew_s=0.2)
    watchers = [
        JobLiveness(bus, kv, dict, worker=f"w{n}", renew_s=0.2) for n in (2, 3)
    ]  # two survivors: both report, JetStream keeps one
    reports: list[HostJobEvent] = []
    changed = Changed()

    async def on_job(observed: Observed[HostJobEvent]) -> None:
        reports.append(observed.model)
        changed.notify()

    watch = await bus.watch(subjects.host_job(room), HostJobEvent, on_job, start=time.time() - 1)
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop)) for w in watchers]
    try:
        await dying.renew()  # both jobs have keys
        await until(
            lambda: all(w.rooms.keys() >= {dead, done} for w in watchers),
            5,
            "the survivors to see both jobs",
        )
        del dead_jobs[done]  # `done` ends normally: its key is deleted
        await dying.renew()
        # then the worker dies: `dead`'s key is never written again
        crashed = await changed.until(lambda: reports, TTL_S + 10, "a crash report")
        assert (crashed[0].job_id, crashed[0].event, crashed[0].reason, crashed[0].room) == (
            dead, "ended", "crashed", room,
        )  # fmt: skip
        # both survivors report it under one id: JetStream stores it once
        await until(lambda: all(dead not in w.rooms for w in watchers), 5, "both survivors")
        assert {e.id for e in reports} == {crash_event_id(dead)}
        assert done not in {e.job_id for e in reports}  # deleted (ended), never lapsed
    finally:
        stop.set()
        await asyncio.gather(*running)
        await watch.stop()
