"""Running an agent in a real LiveKit room without a worker, and watching what a viewer gets.

    async with fake_job(livekit_server, "room-1") as job:       # agent connected, job context set
        session = AgentSession(llm=RealtimeModel(base_url=rt.base_url, api_key="test"))
        await avatar.start(session, job.room)                       # plugins that need a job work
        await session.start(Agent(instructions="..."), room=job.room)

    async with watching(livekit_server, "room-1") as viewer:    # a viewer that records what it gets
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
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import numpy as np
from livekit import api, rtc
from livekit.agents import JobContext, utils
from livekit.agents.testing import fake_job_context

from livestage.settings import TopicSettings
from tests.support.identities import viewer_identity
from tests.support.livekit_helpers import LiveKitEndpoint, join, leave, mint_token, rms_int16
from tests.support.waiting import Changed

T = TypeVar("T")
STAGE_TOPIC = TopicSettings().stage_topic

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


SILENCE_RMS = 200.0
"""int16 RMS below this counts as silence in `AudioLog` (espeak speech is in the thousands)."""

VIDEO_EVERY = 5
"""The recorder converts and keeps every 5th video frame (converting each would load the CPU)."""


@dataclass
class AudioLog:
    """Every audio frame a viewer received, from anyone: (time.time() at arrival, rms, samples)."""

    frames: list[tuple[float, float, bytes]] = field(default_factory=list)
    sample_rate: int = 0

    def loud_since(self, t: float) -> list[float]:
        return [at for at, rms, _ in self.frames if at >= t and rms > SILENCE_RMS]

    def first_loud_after(self, t: float) -> float | None:
        loud = self.loud_since(t)
        return loud[0] if loud else None

    def pcm(self) -> bytes:
        return b"".join(samples for _, _, samples in self.frames)


@dataclass
class _Track:
    audio_rms: list[tuple[float, float]] = field(default_factory=list)
    """(monotonic time, rms) per received audio frame."""
    video_frames: int = 0
    last_video: np.ndarray | None = None


class RecordingViewer:
    """A subscribed client that records everything it receives.

    - `audio`: every audio frame, from anyone (`AudioLog`); `host_audio` is set at the first;
    - `tracks[identity]`: per sender, audio levels and a count of video frames and the latest
      kept frame (`loud_seconds`, `wait_for_audio`, `wait_for_video`);
    - `video`: (time.time(), sender, RGBA frame) of every `VIDEO_EVERY`th frame;
    - `data`: (topic, payload) of every data packet; `captions` (time, chunk, attributes) and
      `caption_streams` (sender, text) of the `lk.transcription` text streams.

    Its handlers are registered when it is made, so make it before the room connects (`join`).
    """

    def __init__(self, room: rtc.Room, identity: str = "") -> None:
        self.room = room
        self.identity = identity
        self.tracks: dict[str, _Track] = defaultdict(_Track)
        self.audio = AudioLog()
        self.host_audio = asyncio.Event()
        self.video: list[tuple[float, str, rtc.VideoFrame]] = []
        self.data: list[tuple[str, bytes]] = []
        self.captions: list[tuple[float, str, dict[str, str]]] = []
        self.caption_streams: list[tuple[str, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = Changed()
        room.on("track_subscribed", self._on_track)
        room.on("data_received", self._on_data)
        room.register_text_stream_handler("lk.transcription", self._on_transcription)

    @classmethod
    async def join(cls, server: LiveKitEndpoint, room: str, identity: str | None = None) -> Self:
        """A new viewer (subscribe-only token, as the edge mints) connected to `room`."""
        identity = identity or viewer_identity()
        token = mint_token(server, identity, room, can_publish=False, can_publish_data=False)
        viewer = cls(rtc.Room(), identity)
        try:
            async with asyncio.timeout(15):
                await viewer.room.connect(server.url, token)
        except BaseException:
            await viewer.leave()
            raise
        return viewer

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(
        self, track: rtc.Track, _: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._read_audio(track, participant.identity))
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            self._spawn(self._read_video(track, participant.identity))

    async def _read_audio(self, track: rtc.Track, identity: str) -> None:
        try:
            stream = rtc.AudioStream(track, sample_rate=24000, num_channels=1)
        except AssertionError:  # the track went away before its stream opened
            return
        self.audio.sample_rate = 24000
        self.host_audio.set()
        async for event in stream:
            rms = rms_int16(event.frame)
            self.audio.frames.append((time.time(), rms, bytes(event.frame.data)))
            self.tracks[identity].audio_rms.append((time.monotonic(), rms))
            self._changed.notify()

    async def _read_video(self, track: rtc.Track, identity: str) -> None:
        try:
            stream = rtc.VideoStream(track)
        except AssertionError:  # the track went away before its stream opened
            return
        state = self.tracks[identity]
        async for event in stream:
            state.video_frames += 1
            if state.video_frames % VIDEO_EVERY == 0:
                frame = event.frame.convert(rtc.VideoBufferType.RGBA)
                self.video.append((time.time(), identity, frame))
                state.last_video = np.frombuffer(frame.data, dtype=np.uint8).reshape(
                    frame.height, frame.width, 4
                )
            self._changed.notify()

    def _on_data(self, packet: rtc.DataPacket) -> None:
        self.data.append((packet.topic or "", bytes(packet.data)))
        self._changed.notify()

    def _on_transcription(self, reader: rtc.TextStreamReader, sender: str) -> None:
        async def read() -> None:
            text = ""
            async for chunk in reader:
                text += chunk
                self.captions.append((time.time(), chunk, dict(reader.info.attributes or {})))
                self._changed.notify()
            self.caption_streams.append((sender, text))
            self._changed.notify()

        self._spawn(read())

    def caption_text(self) -> str:
        return "".join(chunk for _, chunk, _ in self.captions)

    def stage_packets(self) -> list[dict[str, Any]]:
        """The stage topic's packets (the visuals the host relays), decoded, in arrival order."""
        return [json.loads(data) for topic, data in self.data if topic == STAGE_TOPIC]

    async def wait_for(self, condition: Callable[[], T | None], within: float, what: str) -> T:
        """Until `condition()` is truthy (re-checked on everything received); return it."""
        return await self._changed.until(condition, within, what)

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
        self, identity: str, *, frames: int = VIDEO_EVERY, within: float = 15.0
    ) -> np.ndarray:
        """The latest kept RGBA frame once ``frames`` frames from ``identity`` have arrived."""
        state = self.tracks[identity]
        await self._changed.until(
            lambda: state.video_frames >= frames and state.last_video is not None,
            within,
            identity,
        )
        assert state.last_video is not None
        return state.last_video

    async def aclose(self) -> None:
        """Stop reading (the room stays connected)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def leave(self) -> None:
        """Stop reading and disconnect."""
        await self.aclose()
        await leave(self.room)


@contextlib.asynccontextmanager
async def watching(
    server: LiveKitEndpoint, room: str, *, identity: str | None = None
) -> AsyncIterator[RecordingViewer]:
    """A viewer (subscribe-only token, like the edge mints) recording what it receives."""
    viewer = await RecordingViewer.join(server, room, identity)
    try:
        yield viewer
    finally:
        await viewer.leave()
