"""After the host's worker is SIGKILLed, token requests bring a host back: the edge process, a
real livekit-server and real livekit-agents workers (`tests/support/agent_worker.py`).

What a real server does after a SIGKILL (livekit-server 1.13.5, livekit-agents 1.8.9): the job
stays "running" in the dispatch forever (nobody reports its end) and the dead participant stays
in the room for about 20 s. The edge's host decision must not count that job as "on its way" for
ever: once the participant is gone and the job has been running longer than the join grace, the
dispatch is deleted and replaced, and another worker takes the new one. Seen here too: now and
then LiveKit never offers the replacement dispatch to any worker; it has no job after
TOKEN_DISPATCH_STALE_S and is replaced again, and that one is taken. Takes 30-50 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from livekit import api
from livekit.protocol.models import ParticipantInfo

from tests.support.edge_process import PROFILE, running_edges
from tests.support.livekit_helpers import dispatch_jobs, server_api
from tests.support.services import ROOT, livekit_env


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    jobs: list[tuple[str, str]] = field(default_factory=list)  # (job id, participant identity)
    lines: list[str] = field(default_factory=list)
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    got_job: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "registered worker" in line:
                self.registered.set()
            if line.startswith("JOB "):
                _, job_id, identity = line.split()
                self.jobs.append((job_id, identity))
                self.got_job.set()


@contextlib.asynccontextmanager
async def workers(count: int, env: dict[str, str]) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    followers: list[asyncio.Task[None]] = []
    try:
        for _ in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.agent_worker",
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            worker = Worker(process)
            started.append(worker)
            followers.append(asyncio.create_task(worker.follow()))
        async with asyncio.timeout(60):
            for worker in started:
                await worker.registered.wait()
        yield started
    finally:
        for worker in started:
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.wait()
        for task in followers:
            task.cancel()


async def test_after_the_host_is_sigkilled_token_requests_bring_a_host_back(
    nats_server,  # type: ignore[no-untyped-def]
    redis_server,
    livekit_server,
) -> None:
    agent_name = "recovery-" + uuid.uuid4().hex[:8]
    room = "recovery-" + uuid.uuid4().hex[:8]
    worker_env = {**livekit_env(livekit_server), "AGENT_NAME": agent_name}
    async with running_edges(
        nats_server,
        redis_server,
        livekit_server,
        LIVEKIT_ROOM=room,
        LIVEKIT_AGENT_NAME=agent_name,
        TOKEN_HOST_CACHE_TTL_S="1",
        TOKEN_HOST_JOIN_GRACE_S="5",
        # LiveKit sometimes never hands out a dispatch created right after deleting the
        # crashed one (no worker is asked): the stale rule replaces it.
        TOKEN_DISPATCH_STALE_S="10",
        TOKEN_RATE_TOKEN_PER_IP="1000/minute",
        TOKEN_RATE_TOKEN_PER_VISITOR="1000/minute",
    ) as (edge,):
        async with (
            workers(2, worker_env) as pool,
            httpx.AsyncClient(base_url=edge.url, timeout=10) as client,
            server_api(livekit_server) as lk,
        ):

            async def agents_in_room() -> set[str]:
                listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
                return {
                    p.identity for p in listed.participants if p.kind == ParticipantInfo.Kind.AGENT
                }

            assert (await client.post("/api/livekit-token", json=PROFILE)).status_code == 200
            waits = [asyncio.create_task(w.got_job.wait()) for w in pool]
            async with asyncio.timeout(30):
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            (first,) = [w for w in pool if w.jobs]
            (spare,) = [w for w in pool if w is not first]
            _, first_identity = first.jobs[0]
            async with asyncio.timeout(20):
                while first_identity not in await agents_in_room():  # noqa: ASYNC110
                    await asyncio.sleep(0.2)

            first.process.send_signal(signal.SIGKILL)  # no leave, no job status: a crash
            await first.process.wait()

            # Viewers keep coming; within the ghost's lifetime plus the grace a host is back.
            async with asyncio.timeout(120):  # ~20 s ghost + grace + a stale round, loaded
                while not spare.jobs or spare.jobs[-1][1] not in await agents_in_room():
                    response = await client.post("/api/livekit-token", json=PROFILE)
                    assert response.status_code == 200, response.text
                    await asyncio.sleep(0.5)  # one viewer every half second
            assert first_identity not in await agents_in_room()

            # one dispatch, whose job is the spare's (LiveKit lists jobs a few seconds late)
            async with asyncio.timeout(15):
                while await dispatch_jobs(lk, room, agent_name) != [[spare.jobs[-1][1]]]:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
    output = edge.text
    assert "deleting dispatch" in output and "crashed" in output, output[-3000:]
