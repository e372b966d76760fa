"""`python -m host_agent` as production runs it (process executor) with a real edge process:
a viewer token dispatches the host, the host speaks to that viewer, SIGTERM ends the job and
stops the worker; SIGTERM while the host speaks a long sentence lets the sentence end before the
job ends (`shutdown`) and a second worker takes the show; and after a SIGKILL of the whole
host-agent process group (worker and job processes, as in a crash), the next viewer token brings
a host back from a new worker (the edge replaces the dead dispatch: see
`tests/e2e/test_edge_host_recovery.py` for its side).
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

from livestage import subjects
from livestage.schemas import HostCommand, new_id, now_ms
from tests.support.bus import connected_bus
from tests.support.host_events import following
from tests.support.host_process import GREETING_HOST, HostAgentProcess
from tests.support.livekit_helpers import leave
from tests.support.room import RecordingViewer
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
        yield {
            "edge": f"http://127.0.0.1:{port}",
            "env": host_env,
            "hosts": hosts,
            "room": room,
            "nats": nats_server,
        }
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


LONG_SENTENCE = (
    "Before we move on, let me tell you the whole story of how this little stream began, "
    "with one borrowed camera, two patient friends and a very noisy kettle in the kitchen."
)
"""An operator's `say` that takes espeak-ng about eight seconds to speak."""


async def viewer_through_edge(edge: str) -> RecordingViewer:
    """A viewer with a token from the edge (which dispatches a host), recording what it gets."""
    token = post_json(f"{edge}/api/livekit-token", {"displayName": "Ada", "avatar": "fox"})
    viewer = RecordingViewer(rtc.Room())
    async with asyncio.timeout(15):
        await viewer.room.connect(token["url"], token["token"])
    return viewer


async def test_sigterm_mid_sentence_finishes_it_then_another_worker_takes_the_show(
    stack: dict[str, Any],
) -> None:
    """A rolling update: the new worker is up, the old one gets SIGTERM while its host speaks.

    The second worker gets the show through the edge's existing path (a viewer token after the
    first job ended); the first viewer, still in the room, hears the new host."""
    drain_s, stop_s = 20, 4
    env = {
        **stack["env"],
        "HOST_DRAIN_TIMEOUT_S": str(drain_s),
        "LIVESTAGE_STOP_TIMEOUT_S": str(stop_s),
    }
    room_name = stack["room"]
    first = HostAgentProcess(env)
    stack["hosts"].append(first)
    viewers: list[RecordingViewer] = []
    async with connected_bus(stack["nats"], "drain-test") as bus:
        async with following(bus, room_name) as events:
            await first.registered()
            viewer = await viewer_through_edge(stack["edge"])
            viewers.append(viewer)
            try:
                # the greeting is spoken to its end: the first host is live
                greeting = await events.changed.until(
                    lambda: events.turn("monologue"),
                    60,
                    "the first host's greeting",
                )
                first_job = events.job("live")
                assert first_job is not None
                host_identity = greeting.speaker_identity

                second = HostAgentProcess(env)  # the new replica of a rolling update
                stack["hosts"].append(second)
                await second.registered()

                said_at = time.monotonic()
                await bus.publish(
                    subjects.host_control(room_name),
                    HostCommand(
                        id=new_id(),
                        room=room_name,
                        action="say",
                        text=LONG_SENTENCE,
                        created_at=now_ms(),
                    ),
                )
                # mid-sentence: a second of it has been heard
                await viewer.wait_for_audio(
                    host_identity, loud_seconds=1.0, since=said_at, within=30
                )
                sigterm_at, sigterm_wall = time.monotonic(), time.time()
                first.process.send_signal(signal.SIGTERM)

                # the sentence is heard to its end, not cut
                said = await events.changed.until(
                    lambda: events.turn("say"),
                    drain_s,
                    "the sentence being spoken to be published",
                )
                assert not said.interrupted, said
                assert " ".join(said.text.split()) == LONG_SENTENCE
                assert said.ended_at / 1000 > sigterm_wall + 2  # it went on after SIGTERM
                assert viewer.loud_seconds(host_identity, since=sigterm_at) >= 2.0

                # then the job ends as a shutdown, and the process exits 0 within its budget
                ended = await events.changed.until(
                    lambda: events.job("ended"), drain_s, "the first job's end"
                )
                assert ended.job_id == first_job.job_id and ended.reason == "shutdown", ended
                code = await asyncio.to_thread(first.process.wait, drain_s + stop_s + 10)
                exited_after = time.monotonic() - sigterm_at
                output = first.output()
                assert code == 0, output[-4000:]
                assert exited_after < drain_s + stop_s, (exited_after, output[-4000:])
                assert "handing the room over" in output, output[-4000:]
                assert "did not stop" not in output and "Traceback" not in output

                # the show moves to the second worker: a token request, the edge's usual path
                new_live = None
                deadline = time.monotonic() + 90
                while new_live is None and time.monotonic() < deadline:
                    viewers.append(await viewer_through_edge(stack["edge"]))
                    with contextlib.suppress(TimeoutError):
                        new_live = await events.changed.until(
                            lambda: events.job("live", not_id=first_job.job_id),
                            20,
                            "a host from the second worker",
                        )
                assert new_live is not None, "no new host:\n" + second.output()[-4000:]
                new_greeting = await events.changed.until(
                    lambda: events.turn("monologue", not_speaker=host_identity),
                    60,
                    "the new host to speak",
                )
                # the viewer who stayed in the room hears the new host
                await viewer.wait_for_audio(new_greeting.speaker_identity, within=30)
            finally:
                for each in viewers:
                    await each.leave()
