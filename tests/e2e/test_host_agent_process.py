"""`python -m host_agent` as production runs it (process executor) with a real edge process:
a viewer token dispatches the host, the host speaks to that viewer, SIGTERM ends the job and
stops the worker; and after a SIGKILL of the whole host-agent process group (worker and job
processes, as in a crash), the next viewer token brings a host back from a new worker (the
edge replaces the dead dispatch: see `tests/e2e/test_edge_host_recovery.py` for its side).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.support.host_process import GREETING_HOST, HostAgentProcess
from tests.support.livekit_helpers import leave
from tests.support.services import (
    ROOT,
    edge_env,
    free_port,
    post_json,
    stop_service,
    wait_http_ok,
)


@pytest.fixture
def stack(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    room = "proc-" + uuid.uuid4().hex[:8]
    agent_name = "host-proc-" + uuid.uuid4().hex[:6]
    port = free_port()
    common = {
        "LIVEKIT_ROOM": room,
        "LIVEKIT_AGENT_NAME": agent_name,
        "NATS_URL": nats_server.url,
        "LIVEKIT_URL": livekit_server.url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
    }
    edge = subprocess.Popen(
        [sys.executable, "-m", "token_service"],
        cwd=ROOT,
        env={**os.environ, **edge_env(port, nats_server, redis_server, livekit_server), **common},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    host_env = {**common, **GREETING_HOST, "HOST_EMPTY_GRACE_S": "5"}
    hosts: list[HostAgentProcess] = []
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", edge)
        yield {"edge": f"http://127.0.0.1:{port}", "env": host_env, "hosts": hosts}
    finally:
        for host in hosts:
            host.kill_group()
        stop_service(edge)


async def join_as_viewer(edge: str) -> tuple[rtc.Room, asyncio.Event, dict[str, Any]]:
    token = post_json(f"{edge}/api/livekit-token", {"displayName": "Ada", "avatar": "fox"})
    room = rtc.Room()
    heard = asyncio.Event()

    async def listen(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=24000, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if samples.size and np.sqrt(np.mean(samples**2)) > 200:
                heard.set()

    tasks: list[asyncio.Task[None]] = []
    room.on(
        "track_subscribed",
        lambda track, *_: (
            tasks.append(asyncio.create_task(listen(track)))
            if track.kind == rtc.TrackKind.KIND_AUDIO
            else None
        ),
    )
    await room.connect(token["url"], token["token"])
    return room, heard, {"tasks": tasks, "token": token}


async def hear(heard: asyncio.Event, host: HostAgentProcess, within: float = 40) -> None:
    """Until the viewer hears the host; else fail with the host's output (and kill it)."""
    try:
        async with asyncio.timeout(within):
            await heard.wait()
    except TimeoutError:
        pytest.fail("the viewer heard no host:\n" + host.kill_group()[-6000:])


def agents_in(room: rtc.Room) -> set[str]:
    return {
        p.identity
        for p in room.remote_participants.values()
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    }


async def test_a_viewer_token_brings_a_speaking_host_and_sigterm_ends_the_job(
    stack: dict[str, Any],
) -> None:
    host = HostAgentProcess(stack["env"])
    stack["hosts"].append(host)
    await host.registered()
    room, heard, extra = await join_as_viewer(stack["edge"])
    try:
        # the greeting (HOST_GREET) is the first thing a viewer hears
        await hear(heard, host)
        assert len(agents_in(room)) == 1

        # SIGTERM drains: the job ends (reason "shutdown") and the worker exits by itself
        host.process.send_signal(signal.SIGTERM)
        left = asyncio.Event()
        room.on(
            "participant_disconnected", lambda p: left.set() if agents_in(room) == set() else None
        )
        async with asyncio.timeout(20):
            await left.wait()
        assert host.process.wait(20) == 0, host.output()[-4000:]
        output = host.output()
        assert "host job ending (shutdown)" in output, output[-4000:]
        assert "Traceback" not in output, output[-4000:]
    finally:
        for task in extra["tasks"]:
            task.cancel()
        await leave(room)


async def test_after_a_sigkill_the_next_viewer_token_brings_a_host_back(
    stack: dict[str, Any],
) -> None:
    first = HostAgentProcess(stack["env"])
    stack["hosts"].append(first)
    await first.registered()
    room, heard, extra = await join_as_viewer(stack["edge"])
    try:
        await hear(heard, first)
        first_agents = agents_in(room)
        assert len(first_agents) == 1

        first.kill_group()  # the worker and its job processes die mid-show, as in a crash
        second = HostAgentProcess(stack["env"])
        stack["hosts"].append(second)
        await second.registered()

        # the next viewer token must bring a new host although the old one never said goodbye
        back: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not back:
            other, _, more = await join_as_viewer(stack["edge"])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    while not (agents_in(other) - first_agents):  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
            back = agents_in(other) - first_agents
            for task in more["tasks"]:
                task.cancel()
            await leave(other)
        assert back, "no new host joined after the crash:\n" + second.output()[-4000:]
    finally:
        for task in extra["tasks"]:
            task.cancel()
        await leave(room)
