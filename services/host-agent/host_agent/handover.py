"""The worker's drain on SIGTERM: every running show is handed over, none is cut mid-sentence.

A show never ends by itself while viewers watch, so LiveKit's drain (stop taking jobs, wait for
the running ones to end) would only wait out its timeout and then cut the host off. Here the
worker also tells each running job to hand its room over: a `handover` `HostCommand` on
`host.control.<room>` naming the job. The job then says nothing new, lets the turn under way
end (at most `HOST_DRAIN_TIMEOUT_S` less `HANDOVER_TEARDOWN_S`), and ends with reason
`shutdown`; the edge re-dispatches the room to a worker that is not draining (a draining worker
tells LiveKit it is full).

The order on SIGTERM (`python -m host_agent`): `drain_worker` (within `HOST_DRAIN_TIMEOUT_S`),
then `AgentServer.aclose()` ends whatever is still running. The service's stop watchdog allows
the drain plus `LIVESTAGE_STOP_TIMEOUT_S` (`livestage.service.run(..., drain_s=...)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from livekit.agents import AgentServer

from livestage import subjects
from livestage.bus import Bus, BusUnavailable
from livestage.schemas import HostCommand, new_id, now_ms

log = logging.getLogger(__name__)

HANDOVER_TEARDOWN_S = 3.0
"""Of the drain, what a job keeps for ending after its last turn (closing the session and the
avatar, publishing `ended`, leaving the room); the turn under way gets the rest."""

HANDOVER_REPEAT_S = 2.0
"""A job told while it was still subscribing could miss it: jobs still running are told again
this often (the job acts on the first; the command names the job, so no other job obeys it)."""


def turn_budget_s(drain_timeout_s: float) -> float:
    """How long a job handing over lets the turn under way go on before cutting it."""
    return max(0.0, drain_timeout_s - HANDOVER_TEARDOWN_S)


def handover_command(room: str, job_id: str) -> HostCommand:
    return HostCommand(id=new_id(), room=room, action="handover", text=job_id, created_at=now_ms())


async def drain_worker(server: AgentServer, bus: Bus, timeout_s: float) -> bool:
    """Stop taking jobs, hand every running job's room over and wait (at most `timeout_s`)
    until they have ended. False when some did not (or could not be told): `aclose` ends them."""
    drained = asyncio.create_task(server.drain(timeout=None), name="host-agent drain")
    told: set[str] = set()
    try:
        async with asyncio.timeout(timeout_s):
            while not drained.done():
                jobs = [(info.job.id, info.job.room.name) for info in server.active_jobs]
                if jobs and not await _tell(bus, jobs, first=[j for j in jobs if j[0] not in told]):
                    return False
                told.update(job_id for job_id, _ in jobs)
                await asyncio.wait({drained}, timeout=HANDOVER_REPEAT_S)
            await drained
    except TimeoutError:
        log.warning(
            "host-agent: %d job(s) still running after the %.0f s drain (HOST_DRAIN_TIMEOUT_S); "
            "ending them now",
            len(server.active_jobs),
            timeout_s,
        )
        return False
    finally:
        if not drained.done():
            drained.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await drained
    log.info("host-agent drained: every show was handed over")
    return True


async def _tell(bus: Bus, jobs: list[tuple[str, str]], first: list[tuple[str, str]]) -> bool:
    """Ask each job to hand its room over; False when none could be told (NATS is down)."""
    told = 0
    for job_id, room in jobs:
        try:
            subject = subjects.host_control(room)
        except subjects.InvalidRoomName:
            continue  # such a job crashed at its start: it has no room to hand over
        try:
            await bus.publish(subject, handover_command(room, job_id))
        except BusUnavailable as error:
            log.warning("host-agent: could not ask job %s to hand over: %s", job_id, error)
            continue
        told += 1
        if (job_id, room) in first:
            log.info("host-agent draining: job %s hands room %s over", job_id, room)
    return told > 0
