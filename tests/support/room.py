"""Running an agent in a real LiveKit room without a worker, and watching what a viewer gets.

    async with fake_job(livekit_server, "room-1") as job:       # agent connected, job context set
        session = AgentSession(llm=RealtimeModel(base_url=rt.base_url, api_key="test"))
        await avatar.start(session, job.room)                       # plugins that need a job work
        await session.start(Agent(instructions="..."), room=job.room)

    async with watching(livekit_server, "room-1") as viewer:    # a viewer that records media
        await viewer.wait_for_audio("anam-avatar-host", loud_seconds=1.0)
        frame = await viewer.wait_for_video("anam-avatar-host")  # H x W x 4 RGBA numpy array

``fake_job`` is ``livekit.agents.testing.fake_job_context`` (1.8.9) made usable for plugins that
read the job: the fake job's token is empty, so ``JobContext.local_participant_identity`` (which
the Anam plugin reads) fails with ``jwt.DecodeError: Not enough segments``; here the job carries
the agent's real token. It also binds ``utils.http_context`` (``AvatarSession.aclose`` and
``JobContext.api`` need it) and exports ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``
for the block, as a worker would (plugins fall back to them), restoring them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import numpy as np
from livekit import api, rtc
from livekit.agents import JobContext, utils
from livekit.agents.testing import fake_job_context

from tests.support.livekit_helpers import LiveKitEndpoint, join, leave, mint_token
from tests.support.waiting import Changed

LOUD_RMS = 300.0
"""An int16 audio frame louder than this counts as sound (speech is in the thousands)."""


def agent_token(server: LiveKitEndpoint, room: str, identity: str = "agent-host") -> str:
    """An AGENT-kind join token, as a worker gets for a dispatched job."""
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_kind("agent")
        .with_grants(api.VideoGrants(room_join=True, room=room, agent=True))
        .to_jwt()
    )


@dataclass
class FakeJob:
    ctx: JobContext
    room: rtc.Room
    token: str
    identity: str


@contextlib.contextmanager
def livekit_env(server: LiveKitEndpoint) -> Iterator[None]:
    """``LIVEKIT_URL``/``_API_KEY``/``_API_SECRET`` set to ``server`` for the block."""
    values = {
        "LIVEKIT_URL": server.url,
        "LIVEKIT_API_KEY": server.api_key,
        "LIVEKIT_API_SECRET": server.api_secret,
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.asynccontextmanager
async def fake_job(
    server: LiveKitEndpoint, room: str, *, identity: str = "agent-host"
) -> AsyncIterator[FakeJob]:
    """An agent participant in ``room`` inside a fake job context (see the module docstring)."""
    token = agent_token(server, room, identity)
    connected = await join(server, token)
    try:
        with livekit_env(server):
            async with utils.http_context.open():
                with fake_job_context(room=connected, agent_identity=identity) as ctx:
                    ctx._info.token = token  # noqa: SLF001 - see the module docstring
                    ctx._info.url = server.url  # noqa: SLF001
                    yield FakeJob(ctx=ctx, room=connected, token=token, identity=identity)
    finally:
        await leave(connected)


@dataclass
class _Track:
    audio_rms: list[tuple[float, float]] = field(default_factory=list)
    """(monotonic time, rms) per received audio frame."""
    video_frames: int = 0
    last_video: np.ndarray | None = None


class Viewer:
    """A subscribed client that records, per participant identity, audio levels and video."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.tracks: dict[str, _Track] = defaultdict(_Track)
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = Changed()
        room.on("track_subscribed", self._on_track)
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track(publication.track, publication, participant)

    def _on_track(
        self, track: rtc.Track, _: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        reader = self._read_audio if track.kind == rtc.TrackKind.KIND_AUDIO else self._read_video
        task = asyncio.create_task(reader(track, participant.identity))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_audio(self, track: rtc.Track, identity: str) -> None:
        async for event in rtc.AudioStream(track, sample_rate=24000, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
            self.tracks[identity].audio_rms.append((time.monotonic(), rms))
            self._changed.notify()

    async def _read_video(self, track: rtc.Track, identity: str) -> None:
        async for event in rtc.VideoStream(track):
            frame = event.frame.convert(rtc.VideoBufferType.RGBA)
            state = self.tracks[identity]
            state.video_frames += 1
            state.last_video = np.frombuffer(frame.data, dtype=np.uint8).reshape(
                frame.height, frame.width, 4
            )
            self._changed.notify()

    def loud_seconds(self, identity: str, since: float = 0.0) -> float:
        """Seconds of received audio from ``identity`` louder than ``LOUD_RMS`` (10 ms frames)."""
        return 0.01 * sum(
            1 for at, rms in self.tracks[identity].audio_rms if at >= since and rms > LOUD_RMS
        )

    async def wait_for_audio(
        self, identity: str, *, loud_seconds: float = 0.5, since: float = 0.0, within: float = 15.0
    ) -> None:
        """Until ``loud_seconds`` of sound from ``identity`` have arrived (after ``since``)."""
        await self._changed.until(
            lambda: self.loud_seconds(identity, since) >= loud_seconds, within, identity
        )

    async def wait_for_video(
        self, identity: str, *, frames: int = 5, within: float = 15.0
    ) -> np.ndarray:
        """The latest RGBA frame once ``frames`` frames from ``identity`` have arrived."""
        await self._changed.until(
            lambda: self.tracks[identity].video_frames >= frames, within, identity
        )
        frame = self.tracks[identity].last_video
        assert frame is not None
        return frame

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def watching(
    server: LiveKitEndpoint, room: str, *, identity: str = "viewer_doubles_0a1b2c3d"
) -> AsyncIterator[Viewer]:
    """A viewer (subscribe-only token, like the edge mints) recording what it receives."""
    token = mint_token(server, identity, room, can_publish=False, can_publish_data=False)
    connected = await join(server, token)
    viewer = Viewer(connected)
    try:
        yield viewer
    finally:
        await viewer.aclose()
        await leave(connected)
