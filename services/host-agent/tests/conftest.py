"""A real host-agent worker (thread executor, in this process) against the session's real
livekit-server and nats-server, plus viewers that are real rtc clients.

One worker serves the whole module (`host_worker`); each test dispatches it to a fresh room.
Waits are short here (`HOST_VIEWER_WAIT_S` 3 s, `HOST_EMPTY_GRACE_S` 2 s) so the job-ending
rules can be seen within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from livekit import rtc

from host_agent.job import STATE_ATTRIBUTE
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import (
    HostCommand,
    HostJobEvent,
    SpokenTurn,
    StageVisual,
    new_id,
    now_ms,
)
from tests.support.browser import WEB_DIST
from tests.support.chat import chat_message as chat_message
from tests.support.host_worker import HostWorker as HostWorker
from tests.support.host_worker import metric_total as metric_total
from tests.support.host_worker import running_worker as running_worker
from tests.support.paid_doubles import ANAM_KEY as ANAM_KEY
from tests.support.paid_doubles import FAST as FAST
from tests.support.paid_doubles import OPENAI_KEY as OPENAI_KEY
from tests.support.paid_doubles import REPLY as REPLY
from tests.support.paid_doubles import SMALL_AVATAR as SMALL_AVATAR
from tests.support.paid_doubles import paid_worker as paid_worker
from tests.support.paid_doubles import realtime_and_anam as realtime_and_anam
from tests.support.paid_doubles import realtime_reply as realtime_reply
from tests.support.room import RecordingViewer
from tests.support.services import ROOT, edge_env, free_port, stop_service, wait_http_ok
from tests.support.waiting import until as until

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page


@pytest.fixture(scope="module")
async def host_worker(livekit_server, nats_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    async with running_worker(livekit_server, nats_server) as worker:
        yield worker


def unique_room() -> str:
    return "host-" + uuid.uuid4().hex[:10]


class Viewer(RecordingViewer):
    """A recording viewer (`tests/support/room.py`) that also knows the host agent's state."""

    def host(self) -> rtc.RemoteParticipant | None:
        for participant in self.room.remote_participants.values():
            # the host agent, not an avatar (also AGENT kind): the one that reports a state
            if (
                participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                and STATE_ATTRIBUTE in participant.attributes
            ):
                return participant
        return None

    def host_state(self) -> str:
        host = self.host()
        return host.attributes.get(STATE_ATTRIBUTE, "") if host else ""


@pytest.fixture
async def viewers(livekit_server) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    made: list[Viewer] = []

    async def make(room: str, identity: str | None = None) -> Viewer:
        viewer = await Viewer.join(livekit_server, room, identity)
        made.append(viewer)
        return viewer

    yield make
    for viewer in made:
        await viewer.leave()


class Recorder:
    """Collects what the host publishes on NATS for one room."""

    def __init__(self) -> None:
        self.spoken: list[SpokenTurn] = []
        self.jobs: list[HostJobEvent] = []
        self.changed = asyncio.Event()

    async def start(self, bus: Bus, room: str) -> Recorder:
        async def on_spoken(observed: Observed[SpokenTurn]) -> None:
            self.spoken.append(observed.model)
            self.changed.set()

        async def on_job(observed: Observed[HostJobEvent]) -> None:
            self.jobs.append(observed.model)
            self.changed.set()

        await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken, start=0.0)
        await bus.watch(subjects.host_job(room), HostJobEvent, on_job, start=0.0)
        return self

    def job_events(self) -> list[str]:
        return [event.event for event in self.jobs]

    def ended(self) -> HostJobEvent | None:
        return next((event for event in self.jobs if event.event == "ended"), None)


async def go_live(
    worker: HostWorker,
    bus: Bus,
    viewers: Callable[..., Any],
    room: str,
    timeout_s: float = 20,
) -> tuple[Recorder, Viewer]:
    """Records `room`, dispatches `worker` to it, joins a viewer and waits for the job's `live`."""
    recorder = await Recorder().start(bus, room)
    await worker.dispatch(room)
    viewer = await viewers(room)
    await until(lambda: "live" in recorder.job_events(), timeout_s, "the job to go live")
    return recorder, viewer


async def say_then_skip(
    bus: Bus, room: str, viewer: Viewer, words: str, *, heard_after_s: float
) -> tuple[float, float]:
    """Has the host say `words`, waits until `viewer` hears it (from `heard_after_s` after the
    command), then skips it: (when `say` was sent, when `skip` was sent)."""
    said_at = time.time()
    await bus.publish(subjects.host_control(room), command(room, "say", words))
    await until(lambda: viewer.audio.loud_since(said_at + heard_after_s), 15, "the long speech")
    skip_at = time.time()
    await bus.publish(subjects.host_control(room), command(room, "skip"))
    return said_at, skip_at


def command(room: str, action: str, text: str = "") -> HostCommand:
    return HostCommand(
        id=new_id(),
        room=room,
        action=action,  # type: ignore[arg-type]
        text=text,
        created_at=now_ms(),
    )


def backdrop(room: str, url: str, title: str, **fields: Any) -> StageVisual:
    """A backdrop for `room` with a fresh id, made now and shown for ten minutes; `fields` add
    the rest (`summary`, `topic`)."""
    made_at = now_ms()
    return StageVisual(
        id=new_id(),
        room=room,
        kind="backdrop",
        url=url,
        title=title,
        created_at=made_at,
        expires_at=made_at + 600_000,
        **fields,
    )


# ---- the built pages in Chromium, served by a real edge process ------------------------------


async def joined_page(browser: Browser, base_url: str, name: str = "Grace") -> Page:
    """A 1280x800 page of the edge at `base_url` whose viewer has joined as `name`."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(base_url + "/")
    await page.fill("#display-name", name)
    await page.click("#join-button")
    return page


@contextlib.contextmanager
def edge_process(
    worker: HostWorker,
    nats: Any,
    redis: Any,
    livekit: Any,
    web_dist: Path = WEB_DIST,
    **extra_env: str,
) -> Iterator[str]:
    """A real edge process for a fresh room that dispatches `worker`: yields "url|room".
    `extra_env` adds edge settings (e.g. TOKEN_STAGE_MEDIA_URL)."""
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make bootstrap`"
    port = free_port()
    room = "page-" + uuid.uuid4().hex[:8]
    env = edge_env(
        port,
        nats,
        redis,
        livekit,
        LIVEKIT_ROOM=room,
        LIVEKIT_AGENT_NAME=worker.agent_name,
        TOKEN_WEB_DIST=str(web_dist),
        **extra_env,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "token_service"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", process)
        yield f"http://127.0.0.1:{port}|{room}"
    finally:
        stop_service(process)
