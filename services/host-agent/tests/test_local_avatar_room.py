"""The local avatar in a real room: an agent speaks through it, a viewer watches and listens.

A real livekit-server (the session fixture), a real `AgentSession` whose TTS is espeak-ng, our
`LocalAvatarSession` joining as `avatar-host`, and a viewer `rtc.Room` subscribed as a browser is.
The frames are small (320x240) to keep the test cheap; `bench/bench_avatar.py` measures the
default size.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    Agent,
    AgentSession,
    APIConnectOptions,
    tts,
    utils,
)
from livekit.agents.voice.room_io import ATTRIBUTE_PUBLISH_ON_BEHALF, RoomOptions

from host_agent.avatars.local.face import KEY_GREEN
from host_agent.avatars.local.session import (
    PROVIDER,
    LocalAvatarSession,
    avatar_token,
    start_local_avatar,
)
from livestage.identity import LOCAL_AVATAR_IDENTITY
from tests.support.avatar_frames import mouth_opening
from tests.support.infra import LiveKitServer
from tests.support.livekit_helpers import (
    join,
    leave,
    mint_token,
    rms_int16,
    wait_for_event,
)
from tests.support.waiting import until

WIDTH, HEIGHT, FPS = 320, 240, 25.0
GREETING = "Hello everyone, and welcome to the show. How are you all doing today?"


class EspeakTTS(tts.TTS):
    """espeak-ng as a livekit-agents TTS (22.05 kHz mono): enough to drive a real AgentSession."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=22050, num_channels=1
        )

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class _EspeakStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        proc = await asyncio.create_subprocess_exec(
            *("espeak-ng", "-s", "170", "--stdout", self.input_text),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        wav_bytes, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        with wave.open(io.BytesIO(wav_bytes)) as w:
            rate, pcm = w.getframerate(), w.readframes(w.getnframes())
        output_emitter.initialize(
            request_id=utils.shortuuid(), sample_rate=rate, num_channels=1, mime_type="audio/pcm"
        )
        output_emitter.push(pcm)
        output_emitter.flush()


@dataclass
class Watcher:
    """What a subscribed viewer saw and heard, stamped with arrival times (time.monotonic())."""

    video: list[tuple[float, np.ndarray]] = field(default_factory=list)
    audio: list[tuple[float, float]] = field(default_factory=list)  # (arrival, rms)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    enough_video: asyncio.Event = field(default_factory=asyncio.Event)

    def attach(self, room: rtc.Room) -> None:
        room.on("track_subscribed", self._on_track)

    def _on_track(self, track: rtc.Track, _: object, participant: rtc.RemoteParticipant) -> None:
        assert participant.identity == LOCAL_AVATAR_IDENTITY
        reader = self._video if track.kind == rtc.TrackKind.KIND_VIDEO else self._audio
        self.tasks.append(asyncio.create_task(reader(track)))

    async def _video(self, track: rtc.Track) -> None:
        async for event in rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA):
            f = event.frame
            rgba = np.frombuffer(f.data, dtype=np.uint8).reshape(f.height, f.width, 4)
            self.video.append((time.monotonic(), rgba.copy()))
            if len(self.video) >= 25:
                self.enough_video.set()

    async def _audio(self, track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=24000, num_channels=1):
            self.audio.append((time.monotonic(), rms_int16(event.frame)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def new_room() -> str:
    return f"avatar-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def agent_room(livekit_server: LiveKitServer) -> AsyncIterator[rtc.Room]:
    """The agent's own participant (AGENT kind, as a worker's job room is)."""
    token = mint_token(livekit_server, f"agent-{uuid.uuid4().hex[:8]}", new_room())
    token = _as_agent(livekit_server, token)
    room = await join(livekit_server, token)
    try:
        yield room
    finally:
        await leave(room)


def _as_agent(server: LiveKitServer, token: str) -> str:
    from livekit import api

    claims = api.TokenVerifier(server.api_key, server.api_secret).verify(token)
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(claims.identity)
        .with_kind("agent")
        .with_grants(claims.video)
        .to_jwt()
    )


def local_avatar(server: LiveKitServer) -> LocalAvatarSession:
    return LocalAvatarSession(
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        livekit_url=server.url,
        livekit_api_key=server.api_key,
        livekit_api_secret=server.api_secret,
    )


async def start_agent(avatar: LocalAvatarSession, room: rtc.Room) -> AgentSession[Any]:
    """What the host agent does: the avatar first, then the session on the same room."""
    session: AgentSession[Any] = AgentSession(tts=EspeakTTS())
    await avatar.start(session, room)
    await session.start(
        Agent(instructions="You are a test host."),
        room=room,
        room_options=RoomOptions(audio_input=False, text_input=False, close_on_disconnect=False),
    )
    await avatar.wait_for_join(timeout=15)
    return session


async def test_a_viewer_sees_the_lips_move_with_the_voice_and_the_speech_completes(
    livekit_server: LiveKitServer, agent_room: rtc.Room
) -> None:
    watcher = Watcher()
    viewer = await join(
        livekit_server,
        mint_token(
            livekit_server, "viewer_avatartest_0a0b0c0d", agent_room.name, can_publish=False
        ),
    )
    watcher.attach(viewer)
    avatar = local_avatar(livekit_server)
    session: AgentSession[Any] | None = None
    finished: list[Any] = []
    try:
        session = await start_agent(avatar, agent_room)
        assert session.output.audio is not None
        session.output.audio.on("playback_finished", finished.append)
        async with asyncio.timeout(15):
            await watcher.enough_video.wait()
        await asyncio.sleep(1.0)  # a second of the idle face
        speech_began = time.monotonic()
        handle = session.say(GREETING)
        async with asyncio.timeout(30):
            await handle  # done only once the avatar sends lk.playback_finished
        speech_ended = time.monotonic()
        await asyncio.sleep(1.2)  # the window in which the face rests and the voice is silent
        # ... and enough of it seen, however slowly frames arrive on a loaded machine
        await until(lambda: sum(t > speech_ended + 0.5 for t, _ in watcher.video) >= 10, within=15)
        avatar_participant = viewer.remote_participants[LOCAL_AVATAR_IDENTITY]
    finally:
        await watcher.stop()
        if session is not None:
            await session.aclose()
        await avatar.aclose()
        await leave(viewer)

    # the speech completed through the avatar's playback RPCs
    assert not handle.interrupted
    assert len(finished) == 1 and not finished[0].interrupted
    assert finished[0].playback_position > 2.0  # seconds of the greeting that were played
    # who the avatar is
    assert avatar.provider == PROVIDER and avatar.avatar_identity == LOCAL_AVATAR_IDENTITY
    assert avatar_participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    assert avatar_participant.attributes[ATTRIBUTE_PUBLISH_ON_BEHALF] == (
        agent_room.local_participant.identity
    )
    # video of the configured size, keyable: pure green wherever the host is not
    renderer = avatar.avatar.generator.renderer if avatar.avatar else None
    assert renderer is not None
    frames = watcher.video
    assert len(frames) > 60 and all(f.shape == (HEIGHT, WIDTH, 4) for _, f in frames)
    for _, frame in frames[::10]:
        corners = np.concatenate(
            [frame[:30, :40, :3].reshape(-1, 3), frame[:30, -40:, :3].reshape(-1, 3)]
        ).astype(int)
        # VP8 and 4:2:0 chroma shift the extreme green a little (e.g. to 0,254,14): still a key
        assert np.abs(corners - np.array(KEY_GREEN)).max() <= 24
    # the mouth moves while the voice plays and rests when it is silent
    idle = [mouth_opening(renderer, f) for t, f in frames if t < speech_began]
    talking = [
        mouth_opening(renderer, f) for t, f in frames if speech_began + 0.6 < t < speech_ended - 0.3
    ]
    after = [mouth_opening(renderer, f) for t, f in frames if t > speech_ended + 0.5]
    assert len(idle) >= 20 and max(idle) == 0
    assert len(talking) >= 40
    assert sum(v > 10 for v in talking) > 0.5 * len(talking)
    assert len(set(talking)) >= 5  # several shapes, not a mouth stuck open
    assert len(after) >= 10 and max(after) == 0
    # and the viewer heard the voice
    loud = [rms for t, rms in watcher.audio if speech_began < t < speech_ended + 0.3]
    assert sum(rms > 1000 for rms in loud) > 100  # > 1 s of 10 ms frames with a voice in them
    assert max(rms for t, rms in watcher.audio if t > speech_ended + 0.5) < 50


async def test_speech_completes_with_nobody_listening_and_an_interruption_stops_it(
    livekit_server: LiveKitServer, agent_room: rtc.Room
) -> None:
    """No viewer subscribes to the avatar's audio: the stock AvatarRunner would never publish
    its video, the agent would wait for that video forever, and no speech would complete."""
    avatar = local_avatar(livekit_server)
    session = await start_agent(avatar, agent_room)
    try:
        async with asyncio.timeout(20):
            await session.say("Is anybody out there?")
        long_speech = session.say(GREETING + " " + GREETING)
        async with asyncio.timeout(10):
            while session.agent_state != "speaking":  # noqa: ASYNC110 - no event to await here
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # the point: cut the speech in the middle, not at its start
        interrupted_at = time.monotonic()
        session.interrupt()
        async with asyncio.timeout(5):
            await long_speech
        assert long_speech.interrupted
        assert time.monotonic() - interrupted_at < 2.5
        assert avatar.avatar is not None
        generator = avatar.avatar.generator
        await until(lambda: generator.last_state.mouth.closed, within=2)
        # and the next one plays normally after the cut
        async with asyncio.timeout(20):
            after = session.say("Where was I?")
            await after
        assert not after.interrupted
    finally:
        await session.aclose()
        await avatar.aclose()


async def test_the_avatar_leaves_with_the_agent_and_on_aclose(
    livekit_server: LiveKitServer,
) -> None:
    room_name = new_room()
    agent = await join(livekit_server, mint_token(livekit_server, "agent-leaving", room_name))
    observer = await join(
        livekit_server, mint_token(livekit_server, "viewer_observer_01020304", room_name)
    )
    token = avatar_token(
        api_key=livekit_server.api_key,
        api_secret=livekit_server.api_secret,
        room=room_name,
        agent_identity="agent-leaving",
    )
    try:
        avatar = await start_local_avatar(
            livekit_server.url, token, sender_identity="agent-leaving", width=128, height=128
        )
        assert json.loads(json.dumps(avatar.room.local_participant.identity)) == "avatar-host"
        await leave(agent)
        async with asyncio.timeout(10):
            await avatar.closed.wait()
        if LOCAL_AVATAR_IDENTITY in observer.remote_participants:
            await wait_for_event(
                observer,
                "participant_disconnected",
                lambda p: p.identity == LOCAL_AVATAR_IDENTITY,
                within=10,
            )
        # a sender that never turns up is an error, not a hang
        with pytest.raises(TimeoutError):
            await start_local_avatar(
                livekit_server.url,
                token,
                sender_identity="agent-leaving",
                width=128,
                height=128,
                join_timeout_s=2,
            )
    finally:
        await leave(agent)
        await leave(observer)
