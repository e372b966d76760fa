"""Edge processes (`python -m token_service`, as production runs it) against the test servers,
and a viewer who joins through one, for the e2e tests of hosts, replicas and recovery.

    async with running_edges(nats, redis, livekit, 2, LIVEKIT_ROOM=room) as (a, b):
        viewer = await viewer_joins(a.url)      # a token from the edge, then into the room
        ...
        a.output.lines                          # what the process printed so far

Keyword arguments are the edge's environment (`LIVEKIT_ROOM`, `TOKEN_*`). The processes are
ready (`/readyz` answers) inside the block and stopped (SIGTERM) when it ends.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from livekit import rtc

from tests.support.room import RecordingViewer
from tests.support.services import (
    ServiceOutput,
    edge_env,
    end_service,
    free_port,
    post_json,
    start_service,
    wait_http_ok,
)

PROFILE = {"displayName": "Ada", "avatar": "fox"}
"""What the page sends for a token."""


@dataclass
class EdgeProcess:
    process: subprocess.Popen[str]
    port: int
    output: ServiceOutput

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def text(self) -> str:
        """Everything it printed so far."""
        return "".join(self.output.lines)


@asynccontextmanager
async def running_edges(
    nats: Any, redis: Any, livekit: Any, count: int = 1, **settings: str
) -> AsyncIterator[list[EdgeProcess]]:
    """`count` edge processes on ports of their own, sharing `settings`."""
    edges: list[EdgeProcess] = []
    try:
        for _ in range(count):
            port = free_port()
            process = start_service(
                "token_service", edge_env(port, nats, redis, livekit, **settings)
            )
            edges.append(EdgeProcess(process, port, ServiceOutput(process)))
        for edge in edges:
            await asyncio.to_thread(wait_http_ok, f"{edge.url}/readyz", edge.process)
        yield edges
    finally:
        await asyncio.gather(*(asyncio.to_thread(end_service, edge.process) for edge in edges))
        for edge in edges:
            edge.output.finish(5)


async def viewer_joins(edge_url: str) -> RecordingViewer:
    """A viewer as the page makes one: a token from the edge, then into its room (15 s)."""
    token = await asyncio.to_thread(post_json, f"{edge_url}/api/livekit-token", PROFILE)
    viewer = RecordingViewer(rtc.Room(), token["identity"])
    async with asyncio.timeout(15):
        await viewer.room.connect(token["url"], token["token"])
    return viewer
