"""A local double of the Anam avatar API, whose avatar really joins the LiveKit room.

Start it and point ``livekit-plugins-anam`` at it::

    async with AnamDouble() as anam:
        avatar = anam_plugin.AvatarSession(
            persona_config=PersonaConfig(name="Cara", avatarId="cara-id",
                                         avatarModel="cara-4-latest"),
            api_url=anam.url, api_key="test", avatar_participant_identity="anam-avatar-host")
        await avatar.start(session, room)   # LIVEKIT_URL/_API_KEY/_API_SECRET from the env
        record = await anam.wait_for_avatar("publishing")   # joined and publishing video
        ...
        assert record.playback_finished >= 1                  # a segment played through

``POST /v1/engine/session`` checks what the plugin sends — ``Authorization: Bearer <key>``
(401 without; with ``api_key=`` set, 401 for any other key) and the body
``{personaConfig{type: "ephemeral", name, avatarId, llmId, avatarModel?}, environment{livekitUrl,
livekitToken}}`` (400 naming the field otherwise) — and the LiveKit token inside it: a JWT with
an identity, a room grant, ``kind: agent`` and the ``lk.publish_on_behalf`` attribute naming the
agent. It answers ``{"sessionId": ...}`` and then, in the background, its avatar side:

- joins the room at ``livekitUrl`` with that token (only loopback URLs unless
  ``allow_remote_livekit=True``: tests never send traffic elsewhere);
- publishes audio and video at once (``AvatarRunner`` would publish video only after someone
  subscribed to its audio, while the agent side waits for the avatar's video: see
  ``_EagerAvatarRunner``); the video is a drawn face on chroma green that bobs, blinks and opens
  its mouth with the audio level (``TalkingHeadGenerator``);
- receives the agent's audio on the ``lk.audio_stream`` byte stream (``DataStreamAudioReceiver``),
  plays it back on its audio track in step with the video, answers ``lk.playback_started`` and
  ``lk.playback_finished`` (the RPCs the agent waits on), and obeys ``lk.clear_buffer``;
- leaves when the agent leaves, when it is removed from the room, or when the double stops.

What it records: ``anam.requests`` (headers, body) and ``anam.sessions`` (one ``AvatarRecord``
per accepted session: identities, room, state, audio seconds received, segments, playback RPCs
sent, clear-buffer calls, errors). ``wait_for_avatar(state)`` waits for a state.

Faults (``anam.fail(Fault.X, times=None)``): ``HTTP_500``, ``HTTP_401``, ``HANG`` (never
answers), ``NO_VIDEO`` (answers ``sessionId`` and joins the room, but never publishes video nor
answers anything: the agent's audio output then waits forever).

Standalone: ``python -m tests.doubles.anam --port 8766``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, ClassVar
from urllib.parse import urlparse

import numpy as np
from aiohttp import web
from livekit import rtc
from livekit.agents.voice.avatar import (
    AudioSegmentEnd,
    AvatarOptions,
    AvatarRunner,
    DataStreamAudioReceiver,
    VideoGenerator,
)
from livekit.agents.voice.room_io import ATTRIBUTE_PUBLISH_ON_BEHALF

from tests.doubles.base import DoubleServer, Fault, log, serve_forever

GREEN = (0, 177, 64)
SKIN = (236, 188, 150)
DARK = (60, 30, 30)


@dataclass
class AvatarConfig:
    """The avatar's media; change fields before a session starts."""

    width: int = 640
    height: int = 360
    fps: float = 25.0
    sample_rate: int = 24000
    """The rate of the avatar's audio track (the plugin sends 24 kHz)."""


@dataclass
class AvatarRecord:
    """One accepted engine session and what its avatar did."""

    session_id: str
    persona: dict[str, Any]
    livekit_url: str
    room: str
    identity: str
    agent_identity: str
    state: str = "starting"
    """``starting`` → ``joined`` → ``publishing`` → ``closed``; or ``failed``; with the
    ``NO_VIDEO`` fault it stays ``joined``."""
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    publishing_at: float | None = None
    audio_seconds_received: float = 0.0
    segments_received: int = 0
    playback_started: int = 0
    playback_finished: int = 0
    interrupted_playbacks: int = 0
    clear_buffer_calls: int = 0


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the double trusts the plugin that minted it)."""
    try:
        payload = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError) as e:
        raise ValueError(f"not a JWT: {e}") from e


def _is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class TalkingHeadGenerator(VideoGenerator):
    """A face on green that moves when idle and opens its mouth with the audio it plays.

    Frames are sprites pasted on a green canvas (mouth levels pre-drawn), so a frame costs a
    copy, not a redraw. It yields an idle frame whenever no audio is queued, so the avatar's
    video never stops; ``AVSynchronizer`` paces both streams.
    """

    MOUTH_LEVELS = 8

    def __init__(self, config: AvatarConfig, record: AvatarRecord, double: AnamDouble) -> None:
        self._config = config
        self._record = record
        self._double = double
        self._queue: asyncio.Queue[rtc.AudioFrame | AudioSegmentEnd] = asyncio.Queue()
        self._samples_per_frame = int(config.sample_rate / config.fps)
        self._buffer = np.zeros(0, dtype=np.int16)
        self._resampler: rtc.AudioResampler | None = None
        self._frame_index = 0
        h, w = config.height, config.width
        self._canvas = np.empty((h, w, 4), dtype=np.uint8)
        self._canvas[:, :] = (*GREEN, 255)
        self._sprites = [self._draw_face(level) for level in range(self.MOUTH_LEVELS)]
        self._blink = self._draw_face(0, blink=True)

    def _draw_face(self, mouth_level: int, blink: bool = False) -> np.ndarray:
        size = int(min(self._config.width, self._config.height) * 0.7)
        yy, xx = np.mgrid[0:size, 0:size]
        c = size / 2
        sprite = np.empty((size, size, 4), dtype=np.uint8)
        sprite[:, :] = (*GREEN, 255)
        face = ((xx - c) / (size * 0.38)) ** 2 + ((yy - c) / (size * 0.48)) ** 2 <= 1
        sprite[face] = (*SKIN, 255)
        for ex in (c - size * 0.15, c + size * 0.15):
            ey = c - size * 0.12
            if blink:
                eye = (np.abs(yy - ey) < size * 0.01) & (np.abs(xx - ex) < size * 0.06)
            else:
                eye = (xx - ex) ** 2 + (yy - ey) ** 2 <= (size * 0.05) ** 2
            sprite[eye] = (*DARK, 255)
        opening = 0.01 + 0.09 * mouth_level / (self.MOUTH_LEVELS - 1)
        mouth = ((xx - c) / (size * 0.14)) ** 2 + (
            (yy - (c + size * 0.22)) / (size * opening)
        ) ** 2 <= 1
        sprite[mouth] = (*DARK, 255)
        return sprite

    def _video_frame(self, level: int) -> rtc.VideoFrame:
        self._frame_index += 1
        t = self._frame_index / self._config.fps
        sprite = self._sprites[level]
        if level == 0 and self._frame_index % int(self._config.fps * 3) < 3:
            sprite = self._blink
        size = sprite.shape[0]
        frame = self._canvas.copy()
        spare_x = self._config.width - size
        spare_y = self._config.height - size
        x = int(spare_x / 2 + spare_x / 4 * np.sin(2 * np.pi * 0.2 * t))
        y = int(spare_y / 2 + spare_y / 3 * np.sin(2 * np.pi * 0.5 * t))
        frame[y : y + size, x : x + size] = sprite
        return rtc.VideoFrame(
            self._config.width, self._config.height, rtc.VideoBufferType.RGBA, frame.tobytes()
        )

    def _level(self, samples: np.ndarray) -> int:
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
        return min(self.MOUTH_LEVELS - 1, int(rms / 4000 * (self.MOUTH_LEVELS - 1)))

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            if self._resampler is not None:
                for resampled in self._resampler.flush():
                    await self._queue.put(resampled)
            self._record.segments_received += 1
            self._double.notify()
            await self._queue.put(frame)
            return
        self._record.audio_seconds_received += frame.duration
        if frame.sample_rate != self._config.sample_rate or frame.num_channels != 1:
            if self._resampler is None:
                self._resampler = rtc.AudioResampler(
                    frame.sample_rate, self._config.sample_rate, num_channels=frame.num_channels
                )
            for resampled in self._resampler.push(frame):
                await self._queue.put(resampled)
        else:
            await self._queue.put(frame)

    def clear_buffer(self) -> None:
        self._record.clear_buffer_calls += 1
        self._double.notify()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._buffer = np.zeros(0, dtype=np.int16)

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._frames()

    async def _frames(self) -> AsyncGenerator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        spf = self._samples_per_frame
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=0.5 / self._config.fps)
            except TimeoutError:
                yield self._video_frame(0)
                continue
            if isinstance(item, rtc.AudioFrame):
                samples = np.frombuffer(item.data, dtype=np.int16)
                if item.num_channels > 1:
                    samples = samples.reshape(-1, item.num_channels)[:, 0]
                self._buffer = np.concatenate([self._buffer, samples])
            else:  # the segment ended: play what is left, padded to a whole video frame
                pad = (-len(self._buffer)) % spf
                self._buffer = np.concatenate([self._buffer, np.zeros(pad, dtype=np.int16)])
            while len(self._buffer) >= spf:
                chunk, self._buffer = self._buffer[:spf], self._buffer[spf:]
                yield self._video_frame(self._level(chunk))
                yield rtc.AudioFrame(chunk.tobytes(), self._config.sample_rate, 1, spf)
            if isinstance(item, AudioSegmentEnd):
                yield item


class _RecordingReceiver(DataStreamAudioReceiver):
    """``DataStreamAudioReceiver`` that counts the playback RPCs it sends."""

    def __init__(
        self, room: rtc.Room, *, sender_identity: str, record: AvatarRecord, double: AnamDouble
    ):
        super().__init__(room, sender_identity=sender_identity)
        self._record = record
        self._double = double

    def notify_playback_started(self) -> None:
        self._record.playback_started += 1
        self._double.notify()
        super().notify_playback_started()

    def notify_playback_finished(self, playback_position: float, interrupted: bool) -> None:
        self._record.playback_finished += 1
        self._record.interrupted_playbacks += int(interrupted)
        self._double.notify()
        super().notify_playback_finished(playback_position, interrupted)


class _EagerAvatarRunner(AvatarRunner):
    """``AvatarRunner`` that publishes video without waiting for a subscriber to its audio.

    The stock runner publishes its audio, waits until someone subscribes to it, and only then
    publishes video; the agent side (``wait_remote_track=KIND_VIDEO``) sends no audio before it
    sees that video. With no viewer subscribed yet the two would wait on each other, which the
    real Anam service does not do.
    """

    async def _publish_track(self) -> None:
        async with self._lock:
            await self._room_connected_fut
            if self._audio_publication is None:
                audio = rtc.LocalAudioTrack.create_audio_track("avatar_audio", self._audio_source)
                self._audio_publication = await self._room.local_participant.publish_track(
                    audio, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
                )
            if self._video_publication is None:
                video = rtc.LocalVideoTrack.create_video_track("avatar_video", self._video_source)
                self._video_publication = await self._room.local_participant.publish_track(
                    video, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
                )


class _Avatar:
    """The avatar side of one session: a room participant running an ``AvatarRunner``."""

    def __init__(self, double: AnamDouble, record: AvatarRecord, token: str, publish: bool):
        self.double = double
        self.record = record
        self.token = token
        self.publish = publish
        self.room = rtc.Room()
        self.runner: AvatarRunner | None = None
        self.stopped = asyncio.Event()

    def _set_state(self, state: str) -> None:
        self.record.state = state
        if state == "publishing":
            self.record.publishing_at = time.monotonic()
        self.double.notify()

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as e:  # the session is already answered; make the failure visible
            log.exception("avatar %s failed", self.record.identity)
            self.record.error = f"{type(e).__name__}: {e}"
            self._set_state("failed")
        finally:
            if self.runner is not None:
                with contextlib.suppress(Exception):
                    await self.runner.aclose()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.room.disconnect()
            if self.record.state != "failed":
                self._set_state("closed")

    async def _run(self) -> None:
        record, config = self.record, self.double.avatar_config

        def on_participant_left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == record.agent_identity:
                self.stopped.set()

        self.room.on("disconnected", lambda *_: self.stopped.set())
        self.room.on("participant_disconnected", on_participant_left)
        async with asyncio.timeout(15):
            await self.room.connect(self.double.livekit_url or record.livekit_url, self.token)
        self._set_state("joined")
        if not self.publish:
            await self.stopped.wait()
            return
        options = AvatarOptions(
            video_width=config.width,
            video_height=config.height,
            video_fps=config.fps,
            audio_sample_rate=config.sample_rate,
            audio_channels=1,
        )
        receiver = _RecordingReceiver(
            self.room, sender_identity=record.agent_identity, record=record, double=self.double
        )
        self.runner = _EagerAvatarRunner(
            self.room,
            audio_recv=receiver,
            video_gen=TalkingHeadGenerator(config, record, self.double),
            options=options,
            _lazy_publish=False,  # publish at start, not on the first frame
        )
        await self.runner.start()
        self._set_state("publishing")
        await self.stopped.wait()


class AnamDouble(DoubleServer):
    """The Anam engine-session API plus an avatar that joins the room; see the module docstring."""

    name: ClassVar[str] = "anam-double"
    supported_faults = frozenset({Fault.HTTP_500, Fault.HTTP_401, Fault.HANG, Fault.NO_VIDEO})

    def __init__(
        self,
        *,
        avatar_config: AvatarConfig | None = None,
        livekit_url: str | None = None,
        allow_remote_livekit: bool = False,
        **base: Any,
    ) -> None:
        """``base``: ``port``, ``fault``, ``api_key`` (``DoubleServer``; without ``api_key`` any
        non-empty bearer token is accepted). ``livekit_url``: join there instead of the
        ``livekitUrl`` the plugin sent.
        """
        super().__init__(**base)
        self.avatar_config = avatar_config or AvatarConfig()
        self.livekit_url = livekit_url
        self.allow_remote_livekit = allow_remote_livekit
        self.sessions: list[AvatarRecord] = []
        self._avatars: list[_Avatar] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/engine/session", self._engine_session)]

    async def on_stop(self) -> None:
        for avatar in self._avatars:
            avatar.stopped.set()
        if self._tasks:
            # an avatar still joining (or waiting for its agent) is cut short
            _, pending = await asyncio.wait(self._tasks, timeout=3)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)

    async def wait_for_avatar(
        self, state: str = "publishing", within: float = 15.0
    ) -> AvatarRecord:
        """The latest session once its avatar reaches ``state`` (or fails trying)."""

        def check() -> AvatarRecord | None:
            if not self.sessions:
                return None
            last = self.sessions[-1]
            if last.state == "failed" and state != "failed":
                raise RuntimeError(f"the avatar failed: {last.error}")
            return last if last.state == state else None

        return await self.wait_until(check, within)

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message, "statusCode": status}, status=status)

    def _validate(self, body: Any) -> tuple[dict[str, Any], str, str, dict[str, Any]] | str:
        """(personaConfig, livekitUrl, livekitToken, token claims), or what is wrong."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        persona = body.get("personaConfig")
        if not isinstance(persona, dict):
            return "personaConfig: required object"
        if persona.get("type") != "ephemeral":
            return "personaConfig.type: must be 'ephemeral'"
        for key in ("name", "avatarId", "llmId"):
            if not isinstance(persona.get(key), str) or not persona[key]:
                return f"personaConfig.{key}: required string"
        if "avatarModel" in persona and not isinstance(persona["avatarModel"], str):
            return "personaConfig.avatarModel: must be a string"
        env = body.get("environment")
        if not isinstance(env, dict):
            return "environment: required object"
        url, token = env.get("livekitUrl"), env.get("livekitToken")
        if not isinstance(url, str) or urlparse(url).scheme not in ("ws", "wss", "http", "https"):
            return "environment.livekitUrl: required ws(s):// URL"
        if not self.allow_remote_livekit and not self.livekit_url and not _is_loopback_url(url):
            return "environment.livekitUrl: this double only joins LiveKit on 127.0.0.1"
        if not isinstance(token, str) or not token:
            return "environment.livekitToken: required string"
        try:
            claims = decode_jwt_claims(token)
        except ValueError as e:
            return f"environment.livekitToken: {e}"
        video = claims.get("video") or {}
        if not claims.get("sub"):
            return "environment.livekitToken: no identity (sub)"
        if not video.get("roomJoin") or not video.get("room"):
            return "environment.livekitToken: no roomJoin grant for a room"
        if claims.get("kind") != "agent":
            return "environment.livekitToken: kind must be 'agent'"
        if not (claims.get("attributes") or {}).get(ATTRIBUTE_PUBLISH_ON_BEHALF):
            return f"environment.livekitToken: no {ATTRIBUTE_PUBLISH_ON_BEHALF} attribute"
        return persona, url, token, claims

    async def _engine_session(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if entry.fault is Fault.HTTP_500:
            return self._error(500, "Internal server error")
        bearer = entry.bearer
        if entry.fault is Fault.HTTP_401 or not bearer or (self.api_key and bearer != self.api_key):
            return self._error(401, "Unauthorized: invalid or missing API key")
        if entry.fault is Fault.HANG:
            await self.hang()
            return web.Response(status=503)
        try:
            body = entry.json
        except ValueError:
            return self._error(400, "the body is not JSON")
        checked = self._validate(body)
        if isinstance(checked, str):
            return self._error(400, checked)
        persona, url, token, claims = checked
        record = AvatarRecord(
            session_id=str(uuid.uuid4()),
            persona=persona,
            livekit_url=url,
            room=claims["video"]["room"],
            identity=claims["sub"],
            agent_identity=claims["attributes"][ATTRIBUTE_PUBLISH_ON_BEHALF],
        )
        self.sessions.append(record)
        avatar = _Avatar(self, record, token, publish=entry.fault is not Fault.NO_VIDEO)
        self._avatars.append(avatar)
        task = asyncio.create_task(avatar.run(), name=f"anam-avatar-{record.session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.notify()
        return web.json_response({"sessionId": record.session_id})


if __name__ == "__main__":
    serve_forever(lambda port: AnamDouble(port=port))
