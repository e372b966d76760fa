"""The local avatar participant (`avatar-host`): our own drawn host, in the agent's process.

The host agent uses it like any avatar plugin (call it before `session.start`):

    avatar = LocalAvatarSession()                 # 512x512 @ 25 fps, LIVEKIT_* from the env
    await avatar.start(session, ctx.room)         # joins as `avatar-host`, routes the audio
    await session.start(agent=..., room=ctx.room)
    ...
    await avatar.aclose()                         # also runs at job shutdown by itself

`start` mints an AGENT-kind token for `avatar-host` carrying `lk.publish_on_behalf` = the
agent's identity (so the agent's transcriptions and state are attributed to the avatar's media,
as with Anam), joins the room with a second `rtc.Room` in this process, and runs the agents'
avatar machinery: `DataStreamAudioReceiver` (the agent's audio over the `lk.audio_stream` byte
stream) -> `LocalAvatarGenerator` (face + that audio, in step) -> `AvatarRunner` (publishes both,
answers `lk.clear_buffer`, sends `lk.playback_started` / `lk.playback_finished`). The agent's
audio output is swapped for a `DataStreamAudioOutput` aimed at `avatar-host` (our
`RoomAudioOutput`, which keeps the playback reports of several rooms in one process apart).

Waiting on each other: the stock `AvatarRunner` publishes its video only after somebody
subscribes to its audio, while the agent's `DataStreamAudioOutput(wait_remote_track=VIDEO)`
sends nothing until that video exists. With no audio subscriber (no viewer yet, a viewer that
subscribes to video only, an OBS page that has not clicked) both would wait forever and no speech
would ever complete. This is a broadcast, so `_BroadcastRunner` publishes audio and video at
once and never waits for a subscriber; audio nobody hears simply plays to nobody. Every other
wait here is bounded (`join_timeout_s`).

`start_local_avatar(url, token, ...)` runs the avatar side alone (tests, a separate process).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit import api, rtc
from livekit.agents.voice.avatar import (
    AvatarOptions,
    AvatarRunner,
    AvatarSession,
    DataStreamAudioReceiver,
)
from livekit.agents.voice.room_io import ATTRIBUTE_PUBLISH_ON_BEHALF

from host_agent.avatars.output import route_audio
from host_agent.settings import LocalAvatarSettings
from livestage.identity import LOCAL_AVATAR_IDENTITY
from livestage.settings import LiveKitSettings

from .face import KEY_GREEN, RGB, FaceRenderer, Palette
from .generator import LocalAvatarGenerator

if TYPE_CHECKING:
    from livekit.agents import AgentSession

logger = logging.getLogger(__name__)

PROVIDER = "livestage-local"
SAMPLE_RATE = 24000
"""The rate the agent sends its voice at (what OpenAI Realtime and Anam use too)."""
DEFAULT_WIDTH = 512
DEFAULT_HEIGHT = 512
DEFAULT_FPS = 25.0
DEFAULT_MOUTH_LAG_S = 0.0
"""How far the lips trail the voice as sent (see `LocalAvatarSettings.mouth_lag_ms`)."""
AV_STREAM = "avatar"
"""Both tracks share one stream name, so receivers group them in one MediaStream and play
them in sync (WebRTC lip sync works within a stream only)."""


def video_bitrate(width: int, height: int, fps: float) -> int:
    """Bits per second for the face: flat cartoon colours need about 0.1 bit per pixel."""
    return max(200_000, int(width * height * fps * 0.1))


class _BroadcastRunner(AvatarRunner):
    """`AvatarRunner` that publishes audio and video without waiting for a subscriber.

    Overrides the private `_publish_track` of livekit-agents 1.8.9 (pinned); the tests fail
    loudly if a new version changes it (no audio subscriber -> speech must still complete).
    """

    def queued_media(self) -> tuple[float, float]:
        """Seconds of audio and of video waiting to be sent (private state of livekit 1.1.21's
        `AVSynchronizer`; the video figure counts the frame held for its tick as half)."""
        audio = self._audio_source.queued_duration
        video = (self._av_sync._video_queue.qsize() + 0.5) / self._options.video_fps
        return audio, video

    async def _publish_track(self) -> None:
        async with self._lock:
            await self._room_connected_fut
            if self._video_publication is not None:
                return
            audio = rtc.LocalAudioTrack.create_audio_track("avatar_audio", self._audio_source)
            self._audio_publication = await self._room.local_participant.publish_track(
                audio,
                rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE, stream=AV_STREAM),
            )
            video = rtc.LocalVideoTrack.create_video_track("avatar_video", self._video_source)
            o = self._options
            self._video_publication = await self._room.local_participant.publish_track(
                video,
                rtc.TrackPublishOptions(
                    source=rtc.TrackSource.SOURCE_CAMERA,
                    stream=AV_STREAM,
                    # one layer at our own rate: the SDK's presets would cap a 512x512 track at
                    # 15-20 fps, and simulcast would encode every frame two or three times
                    simulcast=False,
                    video_encoding=rtc.VideoEncoding(
                        max_framerate=o.video_fps,
                        max_bitrate=video_bitrate(o.video_width, o.video_height, o.video_fps),
                    ),
                ),
            )


@dataclass
class LocalAvatar:
    """A running avatar participant: its room, runner and generator."""

    room: rtc.Room
    runner: AvatarRunner
    generator: LocalAvatarGenerator
    sender_identity: str | None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _watch: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Stop generating, unpublish and leave the room (idempotent)."""
        if self.closed.is_set():
            return
        self.closed.set()
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        with contextlib.suppress(Exception):
            await self.runner.aclose()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.room.disconnect()
        logger.info("local avatar left the room")

    async def _stop_when_alone(self) -> None:
        """Leave when the agent we speak for leaves, or we are disconnected, or the runner dies."""
        gone = asyncio.Event()

        def on_left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == self.sender_identity:
                logger.info("agent %s left: the avatar leaves too", participant.identity)
                gone.set()

        def on_disconnected(*_: object) -> None:
            gone.set()

        self.room.on("participant_disconnected", on_left)
        self.room.on("disconnected", on_disconnected)
        runner_done = asyncio.ensure_future(self.runner.wait_for_complete())
        gone_wait = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({runner_done, gone_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            runner_done.cancel()
            gone_wait.cancel()
            self.room.off("participant_disconnected", on_left)
            self.room.off("disconnected", on_disconnected)
        await self.aclose()


@functools.lru_cache(maxsize=4)
def shared_renderer(width: int, height: int, palette: Palette) -> FaceRenderer:
    """One renderer per size and palette per process (it is read-only once built).

    Building one draws everything up front (about a second at 512x512 on a busy machine); call
    this from the worker's prewarm to take that off the first job's start.
    """
    return FaceRenderer(width, height, palette)


async def start_local_avatar(
    url: str,
    token: str,
    *,
    sender_identity: str | None,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: float = DEFAULT_FPS,
    palette: Palette | None = None,
    renderer: FaceRenderer | None = None,
    mouth_lag_s: float = DEFAULT_MOUTH_LAG_S,
    join_timeout_s: float = 20.0,
) -> LocalAvatar:
    """Join with `token`, publish the face and play whatever `sender_identity` streams to us.

    `sender_identity` is the agent whose `lk.audio_stream` the avatar plays (None: the first
    AGENT-kind participant). Returns once the audio and video tracks are published. Raises
    TimeoutError when the room or the sender does not turn up within `join_timeout_s`.
    """
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even (I420 video), got {width}x{height}")
    if renderer is None:
        # up to a second of drawing the first time: keep it off the event loop the agent shares
        renderer = await asyncio.to_thread(shared_renderer, width, height, palette or Palette())
    elif (renderer.width, renderer.height) != (width, height):
        raise ValueError("renderer size differs from width x height")
    room = rtc.Room()
    try:
        async with asyncio.timeout(join_timeout_s):
            await room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
        options = AvatarOptions(
            video_width=width,
            video_height=height,
            video_fps=fps,
            audio_sample_rate=SAMPLE_RATE,
            audio_channels=1,
        )
        generator = LocalAvatarGenerator(
            renderer, fps=fps, sample_rate=SAMPLE_RATE, mouth_lag_s=mouth_lag_s
        )
        receiver = DataStreamAudioReceiver(room, sender_identity=sender_identity)
        runner = _BroadcastRunner(
            room, audio_recv=receiver, video_gen=generator, options=options, _lazy_publish=False
        )
        generator.idle_audio_sink = runner.av_sync.push
        generator.queue_probe = runner.queued_media

        pending: set[asyncio.Task[None]] = set()

        def drop_queued_media() -> None:
            # the runner empties the generator; the ~100 ms already queued for sending would
            # still play, so an interruption also drops that (it is all the cut speech)
            task = asyncio.create_task(runner.av_sync.clear_queue())
            pending.add(task)
            task.add_done_callback(pending.discard)

        receiver.on("clear_buffer", drop_queued_media)
        async with asyncio.timeout(join_timeout_s):
            await runner.start()  # waits for the sender, then publishes both tracks
    except BaseException:
        with contextlib.suppress(Exception):
            await room.disconnect()
        raise
    avatar = LocalAvatar(
        room=room, runner=runner, generator=generator, sender_identity=sender_identity
    )
    avatar._watch = asyncio.create_task(avatar._stop_when_alone(), name="local-avatar-watch")
    logger.info(
        "local avatar %s joined %s (%dx%d @ %g fps)",
        room.local_participant.identity,
        room.name,
        width,
        height,
        fps,
    )
    return avatar


def avatar_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    agent_identity: str,
    identity: str = LOCAL_AVATAR_IDENTITY,
    name: str = "Host",
) -> str:
    """An AGENT-kind join token for the avatar that publishes on behalf of `agent_identity`."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_kind("agent")
        .with_identity(identity)
        .with_name(name)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: agent_identity})
        .to_jwt()
    )


class LocalAvatarSession(AvatarSession[Any]):
    """Our drawn avatar as an `AvatarSession` (identity `avatar-host`, provider livestage-local)."""

    def __init__(
        self,
        *,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float = DEFAULT_FPS,
        background: RGB = KEY_GREEN,
        livekit_url: str | None = None,
        livekit_api_key: str | None = None,
        livekit_api_secret: str | None = None,
        name: str = "Host",
        mouth_lag_s: float = DEFAULT_MOUTH_LAG_S,
        join_timeout_s: float = 20.0,
    ) -> None:
        super().__init__()
        if livekit_url is None or livekit_api_key is None or livekit_api_secret is None:
            lk = LiveKitSettings()
            livekit_url = livekit_url or lk.url
            livekit_api_key = livekit_api_key or lk.api_key
            livekit_api_secret = livekit_api_secret or lk.api_secret.get_secret_value()
        self._url = livekit_url
        self._api_key = livekit_api_key
        self._api_secret = livekit_api_secret
        self._width, self._height, self._fps = width, height, fps
        self._palette = Palette(background=background)
        self._name = name
        self._mouth_lag_s = mouth_lag_s
        self._join_timeout_s = join_timeout_s
        self.avatar: LocalAvatar | None = None

    @classmethod
    def from_settings(
        cls,
        settings: LocalAvatarSettings | None = None,
        livekit: LiveKitSettings | None = None,
        *,
        name: str = "Host",
    ) -> LocalAvatarSession:
        """The avatar as configured by `HOST_AVATAR_*` and `LIVEKIT_*` (`name`: display name)."""
        settings = settings or LocalAvatarSettings()
        livekit = livekit or LiveKitSettings()
        return cls(
            width=settings.width,
            height=settings.height,
            fps=settings.fps,
            background=settings.background_rgb,
            mouth_lag_s=settings.mouth_lag_ms / 1000,
            livekit_url=livekit.url,
            livekit_api_key=livekit.api_key,
            livekit_api_secret=livekit.api_secret.get_secret_value(),
            name=name,
        )

    @property
    def avatar_identity(self) -> str:
        return LOCAL_AVATAR_IDENTITY

    @property
    def provider(self) -> str:
        return PROVIDER

    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        """Join as `avatar-host` and route `agent_session`'s audio to it (before session.start)."""
        await super().start(agent_session, room)
        agent_identity = room.local_participant.identity
        if not agent_identity:
            raise RuntimeError("connect the agent's room before starting the local avatar")
        token = avatar_token(
            api_key=self._api_key,
            api_secret=self._api_secret,
            room=room.name,
            agent_identity=agent_identity,
            name=self._name,
        )
        try:
            self.avatar = await start_local_avatar(
                self._url,
                token,
                sender_identity=agent_identity,
                width=self._width,
                height=self._height,
                fps=self._fps,
                palette=self._palette,
                mouth_lag_s=self._mouth_lag_s,
                join_timeout_s=self._join_timeout_s,
            )
        except BaseException:
            await super().aclose()  # no half-started avatar: the caller may fall back to none
            raise
        route_audio(agent_session, room, LOCAL_AVATAR_IDENTITY)

    async def aclose(self) -> None:
        if self.avatar is not None:
            await self.avatar.aclose()
        await super().aclose()
