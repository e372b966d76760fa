"""A room's `host.spoken` and `host.job` events as a test sees them arrive (real NATS).

async with following(bus, room) as events:
    ...
    turn = await events.changed.until(lambda: events.turn("say"), 20, "the said turn")
    answer = await events.changed.until(lambda: events.answer_to(message.id), 20, "the answer")
    ended = await events.changed.until(lambda: events.job("ended"), 20, "the job's end")
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import HostJobEvent, SpokenTurn
from tests.support.waiting import Changed


@dataclass
class HostEvents:
    """The room's `host.spoken` and `host.job` events, as they come."""

    spoken: list[SpokenTurn] = field(default_factory=list)
    jobs: list[HostJobEvent] = field(default_factory=list)
    changed: Changed = field(default_factory=Changed)

    async def on_spoken(self, observed: Observed[SpokenTurn]) -> None:
        self.spoken.append(observed.model)
        self.changed.notify()

    async def on_job(self, observed: Observed[HostJobEvent]) -> None:
        self.jobs.append(observed.model)
        self.changed.notify()

    def job(self, event: str, *, not_id: str = "") -> HostJobEvent | None:
        """The first `event` (started, live, ended) of a job other than `not_id`."""
        return next((j for j in self.jobs if j.event == event and j.job_id != not_id), None)

    def answer_to(self, message_id: str) -> SpokenTurn | None:
        """The first turn that answered the chat message `message_id`."""
        return next((t for t in self.spoken if message_id in t.reply_to), None)

    def turn(self, kind: str, *, not_speaker: str = "") -> SpokenTurn | None:
        """The first turn of `kind` (reply, monologue, say) not spoken by `not_speaker`."""
        return next(
            (t for t in self.spoken if t.kind == kind and t.speaker_identity != not_speaker), None
        )


@contextlib.asynccontextmanager
async def following(bus: Bus, room: str) -> AsyncIterator[HostEvents]:
    """`room`'s events from now on, until the block ends."""
    events = HostEvents()
    since = time.time()
    watches = [
        await bus.watch(subjects.host_spoken(room), SpokenTurn, events.on_spoken, start=since),
        await bus.watch(subjects.host_job(room), HostJobEvent, events.on_job, start=since),
    ]
    try:
        yield events
    finally:
        for watch in watches:
            await watch.stop()
