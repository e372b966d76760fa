"""The local avatar: frame rate, CPU and audio/video offset at its default size.

    python -m bench avatar          # or: make bench B=avatar

A real livekit-server on 127.0.0.1. The avatar side runs alone in a child process
(`start_local_avatar`, exactly what `LocalAvatarSession` runs inside the agent), so its CPU time
is its own: drawing, the synchronizer, RGBA->I420 conversion and VP8 encoding. This process
plays the agent (the host's own `avatar_audio_output`, aimed at `avatar-host`) and a viewer (an
rtc client subscribed to the avatar's tracks).

1. load: ~10 s in which the agent speaks espeak-ng sentences back to back (the mouth moves, the
   audio flows) and the viewer counts the video frames it receives; the child's CPU time over
   the same wall time (psutil) gives the share of one core;
2. offset: tone bursts with a sharp onset after silence; for each, the viewer's arrival time of
   the first non-silent audio frame against the first frame whose mouth is open. Positive: the
   picture is late. The first audio chunk of a burst and the first open-mouth frame are the same
   1/fps slot in the generator, so this is the end-to-end lip-sync error a viewer would see.

Goals: >= 25 fps at 512x512 within 40% of one core; |offset| <= 45 ms.
`BENCH_SMOKE=1`: 1.5 s of load and 2 bursts (the offsets are null when no burst was detected).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from livekit import rtc
from livekit.agents.voice.avatar import DataStreamAudioOutput

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import smoke_or  # noqa: E402
from host_agent.avatars.local.face import FaceRenderer  # noqa: E402
from host_agent.avatars.local.session import (  # noqa: E402
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_MOUTH_LAG_S,
    DEFAULT_WIDTH,
    SAMPLE_RATE,
    LocalAvatar,
    avatar_token,
    start_local_avatar,
)
from host_agent.avatars.output import avatar_audio_output  # noqa: E402
from livestage.identity import LOCAL_AVATAR_IDENTITY  # noqa: E402
from tests.support.avatar_frames import mouth_opening  # noqa: E402
from tests.support.infra import LiveKitServer  # noqa: E402
from tests.support.livekit_helpers import join, leave, mint_token, rms_int16  # noqa: E402

LOAD_S = float(os.environ.get("AVATAR_BENCH_LOAD_S", smoke_or("10", "1.5")))
BURSTS = int(os.environ.get("AVATAR_BENCH_BURSTS", smoke_or("12", "2")))
FIGURES = (
    "fps_target",
    "load_s",
    "fps_at_viewer",
    "frame_gap_p95_ms",
    "cpu_share_of_one_core",
    "cpu_count",
)
SENTENCES = [
    "Hello everyone, and welcome back to the stream.",
    "Today we are looking at something rather wonderful on the stage behind me.",
    "Keep the questions coming in the chat, I am reading every one of them.",
    "Oh, that is a great point, let me think about it for a second.",
]


@dataclass
class ViewerLog:
    """What the viewer received, on its own clocks (so a busy bench process skews nothing).

    Video: each frame's render time (`timestamp_us`, CLOCK_MONOTONIC like time.monotonic()).
    Audio: the stream is continuous (the avatar sends silence when idle), so a sample's playout
    time is the stream's start plus its position; the start is the least-delayed arrival minus
    its position (arrival times alone drift when this process falls behind and audio queues up).
    """

    video: list[tuple[float, int]] = field(default_factory=list)  # (render time, mouth opening)
    audio: list[tuple[int, float, float]] = field(default_factory=list)  # (position, arrival, rms)
    size: tuple[int, int] = (0, 0)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def audio_times(self) -> list[tuple[float, float]]:
        """(playout time, rms) of each received audio frame."""
        if not self.audio:
            return []
        start = min(arrival - pos / SAMPLE_RATE for pos, arrival, _ in self.audio)
        return [(start + pos / SAMPLE_RATE, rms) for pos, _, rms in self.audio]


def espeak(text: str) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-s", "170", "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    resampler = rtc.AudioResampler(rate, SAMPLE_RATE, num_channels=1)
    frames = list(resampler.push(rtc.AudioFrame(pcm.tobytes(), rate, 1, pcm.size)))
    frames += list(resampler.flush())
    return np.concatenate([np.frombuffer(f.data, np.int16) for f in frames])


def tone_burst(seconds: float = 0.4) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    envelope = np.minimum(1.0, (t[::-1]) / 0.02)  # sharp onset, short fade out
    voice = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)
    return (0.35 * 32767 * envelope * voice / 1.5).astype(np.int16)


async def speak(out: DataStreamAudioOutput, samples: np.ndarray) -> None:
    step = SAMPLE_RATE // 50  # 20 ms frames, pushed as fast as the output takes them
    for i in range(0, samples.size, step):
        chunk = samples[i : i + step]
        await out.capture_frame(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, chunk.size))
    out.flush()
    async with asyncio.timeout(samples.size / SAMPLE_RATE + 10):
        await out.wait_for_playout()


def watch(viewer: rtc.Room, log: ViewerLog, renderer: FaceRenderer) -> None:
    async def read_video(track: rtc.Track) -> None:
        async for event in rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA):
            f = event.frame
            if f.width > 64:  # (a closing track sends a tiny last frame)
                log.size = (f.width, f.height)
            rgba = np.frombuffer(f.data, np.uint8).reshape(f.height, f.width, 4)
            log.video.append((event.timestamp_us / 1e6, mouth_opening(renderer, rgba)))

    async def read_audio(track: rtc.Track) -> None:
        position = 0
        async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
            log.audio.append((position, time.monotonic(), rms_int16(event.frame)))
            position += event.frame.samples_per_channel

    def on_track(track: rtc.Track, *_: object) -> None:
        reader = read_video if track.kind == rtc.TrackKind.KIND_VIDEO else read_audio
        log.tasks.append(asyncio.create_task(reader(track)))

    viewer.on("track_subscribed", on_track)


async def child(
    url: str, token: str, sender: str, width: int, height: int, fps: float, lag_s: float
) -> None:
    """The avatar alone, until stdin closes; then one JSON line of its own lip-sync figures."""
    avatar = await start_local_avatar(
        url, token, sender_identity=sender, width=width, height=height, fps=fps, mouth_lag_s=lag_s
    )
    onsets = instrument(avatar)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await avatar.aclose()
    print(json.dumps({"sender_offsets_ms": onsets.offsets_ms()}), flush=True)


@dataclass
class SenderOnsets:
    """When, in the avatar process, a voice starts playing and the mouth first opens."""

    audio: list[float] = field(default_factory=list)  # expected playout start of a voice onset
    video: list[float] = field(default_factory=list)  # capture time of the first open mouth

    def offsets_ms(self) -> list[float]:
        out = []
        for a in self.audio:
            v = next((v for v in self.video if a - 0.3 <= v <= a + 0.5), None)
            if v is not None:
                out.append(round((v - a) * 1000, 1))
        return out


def instrument(avatar: LocalAvatar) -> SenderOnsets:
    """Bench-only taps on the avatar's sources (private attributes of the pinned runner).

    Audio: a voice frame after >= 0.6 s of silence starts playing once what is queued ahead of
    it has played (`queued_duration`). Video: the moment the synchronizer hands the first
    open-mouth frame to the video source.
    """
    onsets = SenderOnsets()
    generator, runner = avatar.generator, avatar.runner
    audio_source, video_source = runner._audio_source, runner._video_source
    open_frames: dict[int, bool] = {}
    render = generator._video

    def video_frame(chunk: np.ndarray | None, n: int) -> rtc.VideoFrame:
        frame = render(chunk, n)
        open_frames[id(frame)] = not generator.last_state.mouth.closed
        return frame

    generator._video = video_frame  # type: ignore[method-assign]
    capture_audio, capture_video = audio_source.capture_frame, video_source.capture_frame
    quiet_since = [time.monotonic()]
    was_open = [False]

    async def audio_frame(frame: rtc.AudioFrame) -> None:
        now = time.monotonic()
        if rms_int16(frame) > 1500:
            if now - quiet_since[0] >= 0.6:
                onsets.audio.append(now + audio_source.queued_duration)
            quiet_since[0] = math.inf
        elif quiet_since[0] == math.inf:
            quiet_since[0] = now
        await capture_audio(frame)

    def video_capture(frame: rtc.VideoFrame, **kwargs: object) -> None:
        is_open = open_frames.pop(id(frame), False)
        if is_open and not was_open[0]:
            onsets.video.append(time.monotonic())
        was_open[0] = is_open
        capture_video(frame, **kwargs)  # type: ignore[arg-type]

    audio_source.capture_frame = audio_frame  # type: ignore[method-assign]
    video_source.capture_frame = video_capture  # type: ignore[method-assign]
    return onsets


def onsets(log: ViewerLog, start: float, end: float) -> tuple[float | None, float | None]:
    """Playout time of the first loud audio frame and render time of the first open mouth."""
    audio = next((t for t, rms in log.audio_times() if start <= t < end and rms > 1500), None)
    video = next((t for t, opening in log.video if start <= t < end and opening > 10), None)
    return audio, video


async def measure(
    server: LiveKitServer,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: float = DEFAULT_FPS,
    lag_s: float = DEFAULT_MOUTH_LAG_S,
) -> dict[str, object]:
    room_name = f"bench-avatar-{uuid.uuid4().hex[:8]}"
    agent_identity = "agent-bench"
    agent = await join(server, mint_token(server, agent_identity, room_name))
    viewer = await join(
        server, mint_token(server, "viewer_bench_0b0e0c0d", room_name, can_publish=False)
    )
    renderer = FaceRenderer(width, height)
    log = ViewerLog()
    watch(viewer, log, renderer)
    token = avatar_token(
        api_key=server.api_key,
        api_secret=server.api_secret,
        room=room_name,
        agent_identity=agent_identity,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_avatar",
        "child",
        server.url,
        token,
        agent_identity,
        str(width),
        str(height),
        str(fps),
        str(lag_s),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"avatar child did not start: {line!r}")
        out = avatar_audio_output(agent, LOCAL_AVATAR_IDENTITY)
        speech = [espeak(s) for s in SENTENCES]
        async with asyncio.timeout(20):
            while len(log.video) < 25:  # noqa: ASYNC110 - the viewer is receiving: warmed up
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)

        # 1. load
        child_proc = psutil.Process(proc.pid)
        cpu0, wall0 = sum(child_proc.cpu_times()[:2]), time.monotonic()
        i = 0
        while time.monotonic() - wall0 < LOAD_S:
            await speak(out, speech[i % len(speech)])
            i += 1
        cpu1, wall1 = sum(child_proc.cpu_times()[:2]), time.monotonic()

        # 2. lip-sync offset
        await asyncio.sleep(1.0)
        windows: list[tuple[float, float]] = []
        for _ in range(BURSTS):
            start = time.monotonic()
            await speak(out, tone_burst())
            await asyncio.sleep(0.6)
            windows.append((start, time.monotonic()))
            await asyncio.sleep(0.4)
    finally:
        sender_offsets: list[float] = []
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(15):
                rest, _ = await proc.communicate()
            for line in rest.decode().splitlines():
                if line.startswith("{"):
                    sender_offsets = json.loads(line)["sender_offsets_ms"]
        except TimeoutError:
            proc.kill()
            await proc.wait()
        for task in log.tasks:
            task.cancel()
        await leave(viewer)
        await leave(agent)

    wall = wall1 - wall0
    rendered = [t for t, _ in log.video if wall0 <= t <= wall1]
    gaps = np.diff(rendered)
    offsets: list[float] = []
    for start, end in windows:
        audio_t, video_t = onsets(log, start, end)
        if audio_t is not None and video_t is not None:
            offsets.append((video_t - audio_t) * 1000)
    return {
        "size": f"{width}x{height}",
        "fps_target": fps,
        "mouth_lag_ms": round(lag_s * 1000, 1),
        "load_s": round(wall, 1),
        "fps_at_viewer": round(len(rendered) / wall, 1),
        "frame_gap_p95_ms": round(float(np.percentile(gaps, 95)) * 1000, 1) if gaps.size else None,
        "cpu_share_of_one_core": round((cpu1 - cpu0) / wall, 3),
        "av_offset_ms": [round(o, 1) for o in offsets],
        "av_offset_median_ms": round(statistics.median(offsets), 1) if offsets else None,
        "av_offset_max_abs_ms": round(max(abs(o) for o in offsets), 1) if offsets else None,
        "av_offset_p90_abs_ms": (
            round(float(np.percentile(np.abs(offsets), 90)), 1) if offsets else None
        ),
        "bursts_detected": f"{len(offsets)}/{BURSTS}",
        "sender_av_offset_ms": sender_offsets,
        "sender_av_offset_median_ms": (
            round(statistics.median(sender_offsets), 1) if sender_offsets else None
        ),
        "received_size": f"{log.size[0]}x{log.size[1]}",
    }


async def run() -> dict[str, object]:
    goals = {"fps_min": 25, "cpu_share_max": 0.40, "av_offset_max_abs_ms": 45}
    with LiveKitServer() as server:
        result = await measure(
            server,
            fps=float(os.environ.get("AVATAR_BENCH_FPS", DEFAULT_FPS)),
            lag_s=float(os.environ.get("AVATAR_BENCH_MOUTH_LAG_MS", DEFAULT_MOUTH_LAG_S * 1000))
            / 1000,
        )
    return {
        **result,
        "goals": goals,
        "meets_goals": bool(
            result["fps_at_viewer"] >= goals["fps_min"]  # type: ignore[operator]
            and result["cpu_share_of_one_core"] <= goals["cpu_share_max"]  # type: ignore[operator]
            and result["av_offset_max_abs_ms"] is not None
            and result["av_offset_max_abs_ms"] <= goals["av_offset_max_abs_ms"]  # type: ignore[operator]
        ),
        "cpu_count": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        url, token, sender, w, h, f, lag = sys.argv[2:9]
        asyncio.run(child(url, token, sender, int(w), int(h), float(f), float(lag)))
    else:
        print(json.dumps(asyncio.run(run()), indent=2))
