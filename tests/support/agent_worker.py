"""A minimal livekit-agents worker standing in for the host agent in cross-service tests.

    python -m tests.support.agent_worker   # LIVEKIT_URL/_API_KEY/_API_SECRET, AGENT_NAME

It registers under AGENT_NAME (explicit dispatch only), joins the room of every job it gets,
prints `JOB <job id> <participant identity>` and stays until killed. Jobs run in the worker's own
process (thread executor), so SIGKILL of this process is a host crash with no goodbye: no job
status update, no leave. Its HTTP health server listens on a free port on 127.0.0.1, and it
never declares itself full (load threshold off), so a busy test machine does not stall it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os

from livekit.agents import AgentServer, JobContext, JobExecutorType

server = AgentServer(
    job_executor_type=JobExecutorType.THREAD,
    num_idle_processes=0,
    load_threshold=math.inf,
    host="127.0.0.1",
    port=0,
)


@server.rtc_session(agent_name=os.environ["AGENT_NAME"])
async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    print("JOB", ctx.job.id, ctx.room.local_participant.identity, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    asyncio.run(server.run(devmode=False, unregistered=False))
