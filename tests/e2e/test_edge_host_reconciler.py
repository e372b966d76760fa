"""A viewer who joined while no host worker ran gets a host once one registers, with no other
token request: two edge processes (replicas of one room), a real livekit-server, and
`python -m host_agent` as production runs it.

What a real server does (livekit-server 1.13.5): a dispatch made while no worker is registered
is logged "not dispatching agent job since no worker is available" and never offered again,
not even to a worker that registers a moment later. The test waits for that line, so the
dispatch is the stuck one of the issue, then starts the worker. The worker announces its
registration (`host.worker.<agent name>`); each edge's reconciler looks at the room after
`TOKEN_DISPATCH_WORKER_GRACE_S`, finds a viewer and a jobless dispatch made before the
registration, and replaces it under the room's lock. `TOKEN_DISPATCH_STALE_S` is long here, so
the stale rule cannot be what brings the host.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.support.bus import connected_bus
from tests.support.edge_process import running_edges, viewer_joins
from tests.support.host_events import following
from tests.support.host_process import GREETING_HOST, HostAgentProcess
from tests.support.livekit_helpers import dispatch_jobs, server_api
from tests.support.room import LOUD_RMS, RecordingViewer
from tests.support.services import livekit_env
from tests.support.waiting import until

HOST_WITHIN_S = 10.0
"""The issue's bound: the host speaks to the waiting viewer within 10 s of the worker's
registration."""


def livekit_said_no_worker(log_path: Any, room: str) -> bool:
    text = log_path.read_text(errors="replace")
    return any(
        "not dispatching agent job since no worker is available" in line and room in line
        for line in text.splitlines()
    )


async def test_a_viewer_waiting_without_a_worker_hears_the_host_once_a_worker_registers(
    nats_server,  # type: ignore[no-untyped-def]
    redis_server,
    livekit_server,
) -> None:
    room = "reconcile-" + uuid.uuid4().hex[:8]
    agent_name = "host-reconcile-" + uuid.uuid4().hex[:6]
    common = {
        "LIVEKIT_ROOM": room,
        "LIVEKIT_AGENT_NAME": agent_name,
        "TOKEN_DISPATCH_STALE_S": "300",
    }
    viewer: RecordingViewer | None = None
    host: HostAgentProcess | None = None
    async with (
        running_edges(nats_server, redis_server, livekit_server, 2, **common) as edges,
        connected_bus(nats_server, "reconciler-test") as bus,
        following(bus, room) as events,
    ):
        try:
            # A viewer joins through the first edge while no worker of this agent name runs.
            viewer = await viewer_joins(edges[0].url)
            await until(
                lambda: livekit_said_no_worker(livekit_server.log_path, room),
                15,
                "LiveKit to give up on the dispatch (no worker)",
                interval=0.2,
            )

            host = HostAgentProcess(
                {
                    **common,
                    "NATS_URL": nats_server.url,
                    **livekit_env(livekit_server),
                    **GREETING_HOST,
                }
            )
            await host.registered()
            registered_at = time.monotonic()

            def host_heard() -> str | None:
                assert viewer is not None
                return next(
                    (
                        identity
                        for identity, track in viewer.tracks.items()
                        if any(rms > LOUD_RMS for _, rms in track.audio_rms)
                    ),
                    None,
                )

            try:
                speaker = await viewer.wait_for(host_heard, HOST_WITHIN_S, "the host's voice")
            except AssertionError:
                raise AssertionError(
                    "the waiting viewer heard no host within 10 s of the worker registering\n"
                    + "\n".join("".join(edge.output.lines[-40:]) for edge in edges)
                    + host.output()[-4000:]
                ) from None
            print(f"host heard {time.monotonic() - registered_at:.1f} s after the registration")

            # Exactly one job: one host.job "started", and LiveKit lists one dispatch of ours with
            # one job, whose participant is the voice the viewer hears (it lists jobs a bit late).
            async with server_api(livekit_server) as lk, asyncio.timeout(15):
                while await dispatch_jobs(lk, room, agent_name) != [[speaker]]:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)  # LiveKit has no event for its dispatch list
            await events.changed.until(
                lambda: events.job("started"), 10, "the job's host.job started event"
            )
            started = [event for event in events.jobs if event.event == "started"]
            assert [event.room for event in started] == [room], started
        finally:
            if viewer is not None:
                await viewer.leave()
            host_output = host.kill_group() if host is not None else ""
    edge_output = "".join(edge.text for edge in edges)
    assert "before a host worker registered" in edge_output, edge_output[-4000:]
    # by the look the registration asked for, or by a sweep that came first: the worker rule
    assert "re-dispatched its host for its viewers" in edge_output, edge_output[-4000:]
    assert "Traceback" not in host_output, host_output[-4000:]
