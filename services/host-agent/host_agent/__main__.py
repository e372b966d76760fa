"""Entry point: `python -m host_agent [start|dev]` (default `start`).

`start` is production: one process per job (`HOST_EXECUTOR`), `HOST_IDLE_PROCESSES` warm ones.
`dev` keeps no warm process (a job process starts when a job comes). Logs follow
LIVESTAGE_LOG_LEVEL in both. Both register the worker
under `LIVEKIT_AGENT_NAME` with the LiveKit server at `LIVEKIT_URL` and wait for dispatches;
SIGINT/SIGTERM drain: no new jobs, each running show finishes the turn under way and ends
(`shutdown`), handed over to another worker (`handover.py`, at most `HOST_DRAIN_TIMEOUT_S`);
then the worker stops. A worker that dies instead has its jobs reported crashed by the others
(`liveness.py`), so their shows get a new host at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys

from host_agent.handover import drain_worker
from host_agent.job import JobConfig
from host_agent.liveness import JobLiveness
from host_agent.worker import announce_registrations, build_server
from livestage import health, service

log = logging.getLogger("host_agent")

USAGE = "usage: python -m host_agent [start|dev]"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "start"
    if command not in ("start", "dev") or len(argv) > 1:
        print(USAGE, file=sys.stderr)
        return 2
    devmode = command == "dev"
    config = JobConfig.from_env()

    async def run(stop: asyncio.Event) -> None:
        # Jobs connect to NATS themselves; checking it here (and declaring the streams) makes a
        # NATS problem visible at start rather than at the first viewer. The worker keeps its
        # connection to announce its registrations (`host.worker`) and to hand its shows over
        # when it drains.
        bus = await service.connect_bus("host-agent", stop, config.nats)
        if bus is None:
            return
        server = build_server(config, devmode=devmode)
        announce_registrations(server, bus, config.livekit.agent_name)
        liveness = await JobLiveness.open(
            bus,
            lambda: {info.job.id: info.job.room.name for info in server.active_jobs},
            worker=f"{socket.gethostname()}:{os.getpid()}",
            ttl_s=config.host.job_liveness_ttl_s,
            renew_s=config.host.job_liveness_renew_s,
        )
        liveness_stop = asyncio.Event()
        keeping = asyncio.create_task(liveness.run(liveness_stop)) if liveness is not None else None
        # Jobs hold their own NATS connections; the worker is ready once LiveKit registered it.
        health.remove_ready_check("nats")
        health.add_ready_check("livekit-worker", lambda: server.id != "unregistered")
        worker = asyncio.create_task(server.run(devmode=devmode))
        stopped = asyncio.create_task(stop.wait())
        log.info(
            "host-agent worker registering as %r with %s",
            config.livekit.agent_name,
            config.livekit.url,
        )
        try:
            await asyncio.wait({worker, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not worker.done() and config.host.drain_timeout_s > 0:
                await drain_worker(server, bus, config.host.drain_timeout_s)
            await server.aclose()
        finally:
            liveness_stop.set()
            if keeping is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(keeping, 1.5)
            await bus.close()
        if worker.done() and worker.exception() is not None:
            raise worker.exception()  # type: ignore[misc]
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    service.run("host-agent", run, drain_s=config.host.drain_timeout_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
