"""The local avatar's `VideoGenerator`: the agent's audio in; face video and that audio out.

`AvatarRunner` pushes the audio it receives from the agent (`push_audio`, with
`AudioSegmentEnd` after each utterance, `clear_buffer` on an interruption) and forwards whatever
this generator yields into an `rtc.AVSynchronizer`. The generator works in video frames: each
frame slot of 1/fps seconds is either

- speech: the next 1/fps of buffered agent audio, yielded as a video frame whose mouth comes
  from that very audio (`MouthTracker`), then the audio frame itself, so picture and sound enter
  the synchronizer together; after the last frame of an utterance (padded with silence to a
  whole frame) comes `AudioSegmentEnd`, which the runner turns into `lk.playback_finished`; or
- idle: a frame of the face at rest (blinking, breathing, glancing, mouth closed) and, when an
  idle audio sink is attached, a frame of silence pushed straight into the synchronizer.

Why silence is pushed while idle: the synchronizer paces video through a short queue and audio
through the audio source's queue. If only video flowed while idle, the video queue would be full
and the audio queue empty when speech begins, so the voice would run ~100 ms ahead of the lips
for the whole utterance. Feeding silence, topped up or held back so the audio queue stays level
with the video queue (`queue_probe`), makes every utterance start with both equally deep. It goes to
the sink directly, not through the runner, because the runner counts every audio frame it
forwards as playback (it would send `lk.playback_started` for silence).

Animation time is media time (frames / fps), so motion stays smooth under a busy event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator

from .face import FaceRenderer, FaceState
from .motion import IdleMotion
from .mouth import MouthTracker

logger = logging.getLogger(__name__)

IdleAudioSink = Callable[[rtc.AudioFrame], Awaitable[None]]
QueueProbe = Callable[[], tuple[float, float]]
"""Seconds of (audio, video) queued for sending, to keep the two queues level while idle."""

# While an utterance is playing and its next audio has not arrived yet, wait this many frame
# intervals for it before playing what there is (padded): the synchronizer's queues still hold
# about 100 ms, so a short wait costs nothing and avoids clicks of inserted silence.
_UNDERRUN_WAIT_FRAMES = 1.0


class LocalAvatarGenerator(VideoGenerator):
    """Yields face video (and the agent's audio, re-cut to one chunk per video frame)."""

    def __init__(
        self,
        renderer: FaceRenderer,
        *,
        fps: float,
        sample_rate: int = 24000,
        motion: IdleMotion | None = None,
        mouth: MouthTracker | None = None,
        mouth_lag_s: float = 0.0,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0.0 <= mouth_lag_s <= 0.5:
            raise ValueError(f"mouth_lag_s must be within 0..0.5 s, got {mouth_lag_s}")
        self.renderer = renderer
        self.fps = fps
        self.sample_rate = sample_rate
        self.motion = motion or IdleMotion()
        self.mouth = mouth or MouthTracker(sample_rate, 1.0 / fps)
        self.idle_audio_sink: IdleAudioSink | None = None
        self.queue_probe: QueueProbe | None = None
        # the mouth shows the audio heard `mouth_lag_s` ago: what was played, silence included
        self._lag = round(mouth_lag_s * sample_rate)
        self._heard = np.zeros(0, dtype=np.int16)
        self.frames = 0  # video frames yielded so far (the media clock)
        self.speech_frames = 0
        self.last_state = FaceState()
        # pending agent audio: int16 mono arrays and AudioSegmentEnd markers, in order
        self._pending: collections.deque[np.ndarray | AudioSegmentEnd] = collections.deque()
        self._pending_samples = 0
        self._segment_has_audio = False
        self._in_segment = False  # an utterance has started playing and not yet ended
        self._resampler: rtc.AudioResampler | None = None
        self._resampler_rate = 0
        self._arrived = asyncio.Event()

    # -- VideoGenerator --

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            if not self._segment_has_audio:
                # an empty segment only follows a clear_buffer (the cut stream's trailer); the
                # runner must not report it as a finished playback of the next utterance
                return
            for tail in self._flush_resampler():
                self._append(tail)
            self._pending.append(frame)
            self._segment_has_audio = False
        else:
            for mono in self._to_mono_at_rate(frame):
                self._append(mono)
            self._segment_has_audio = True
        self._arrived.set()

    def clear_buffer(self) -> None:
        """Drop all pending audio at once (the agent was interrupted); the mouth closes."""
        self._pending.clear()
        self._pending_samples = 0
        self._segment_has_audio = False
        self._in_segment = False
        self._resampler = None
        self._heard = np.zeros(0, dtype=np.int16)
        self.mouth.reset()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._frames()

    # -- the frame loop --

    async def _frames(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        while True:
            n = self._samples_in_frame(self.frames)
            if self._in_segment and not self._chunk_ready(n):
                await self._wait_for_audio(_UNDERRUN_WAIT_FRAMES / self.fps)
            if self._pending and (self._chunk_ready(n) or self._in_segment):
                chunk, ended = self._take(n)
                self._in_segment = not ended
                yield self._video(chunk, n)
                yield rtc.AudioFrame(chunk.tobytes(), self.sample_rate, 1, n)
                self.speech_frames += 1
                if ended:
                    yield AudioSegmentEnd()
                continue
            # idle
            if self.idle_audio_sink is not None:
                silence = rtc.AudioFrame(bytes(2 * n), self.sample_rate, 1, n)
                for _ in range(self._silence_frames(n)):
                    await self.idle_audio_sink(silence)
            yield self._video(None, n)

    def _silence_frames(self, n: int) -> int:
        """How many frames of silence to send this idle slot: one, or none/two to bring the
        audio queue level with the video queue, so that speech starts with both equally deep
        (which queue fills first otherwise varies from run to run, by up to ~100 ms)."""
        if self.queue_probe is None:
            return 1
        audio_s, video_s = self.queue_probe()
        frame_s = n / self.sample_rate
        if audio_s > video_s + frame_s / 2:
            return 0
        if audio_s + frame_s < video_s - frame_s / 2:
            return 2
        return 1

    def _video(self, chunk: np.ndarray | None, n: int) -> rtc.VideoFrame:
        t = self.frames / self.fps
        self.frames += 1
        mouth = self.mouth.update(self._mouth_window(chunk, n))
        pose = self.motion.pose(t, speech=self.mouth.speech)
        state = FaceState(
            mouth=mouth,
            eyelid=pose.eyelid,
            gaze=pose.gaze,
            brow=pose.brow,
            head_dx=pose.head_dx,
            head_dy=pose.head_dy,
            breath=pose.breath,
        )
        self.last_state = state
        r = self.renderer
        buffer = bytearray(r.width * r.height * 4)  # the frame owns its pixels
        r.render(state, out=np.frombuffer(buffer, dtype=np.uint8).reshape(r.height, r.width, 4))
        return rtc.VideoFrame(r.width, r.height, rtc.VideoBufferType.RGBA, buffer)

    def _mouth_window(self, chunk: np.ndarray | None, n: int) -> np.ndarray | None:
        """The `n` samples the mouth shows for this frame: the chunk itself, or with a lag the
        samples that ended `mouth_lag_s` ago (None: silence)."""
        if self._lag == 0:
            return chunk
        played = chunk if chunk is not None else np.zeros(n, dtype=np.int16)
        self._heard = np.concatenate([self._heard, played])[-(self._lag + 2 * n) :]
        end = self._heard.size - self._lag
        if end <= 0:
            return None
        window = self._heard[max(0, end - n) : end]
        return window if window.any() else None

    # -- audio bookkeeping --

    def _samples_in_frame(self, index: int) -> int:
        """Samples in frame `index` (whole frames add up exactly, whatever the fps)."""
        per = self.sample_rate / self.fps
        return round((index + 1) * per) - round(index * per)

    def _chunk_ready(self, n: int) -> bool:
        """A whole frame of audio is pending, or the utterance's end is."""
        if self._pending_samples >= n:
            return True
        return any(isinstance(item, AudioSegmentEnd) for item in self._pending)

    async def _wait_for_audio(self, within: float) -> None:
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._arrived.wait()

    def _take(self, n: int) -> tuple[np.ndarray, bool]:
        """Up to `n` samples of the current utterance (zero-padded) and whether it ended."""
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        ended = False
        while filled < n and self._pending:
            head = self._pending[0]
            if isinstance(head, AudioSegmentEnd):
                self._pending.popleft()
                ended = True
                break
            take = min(n - filled, head.size)
            out[filled : filled + take] = head[:take]
            filled += take
            self._pending_samples -= take
            if take == head.size:
                self._pending.popleft()
            else:
                self._pending[0] = head[take:]
        if not ended and self._pending and isinstance(self._pending[0], AudioSegmentEnd):
            self._pending.popleft()  # the end falls exactly on a frame boundary
            ended = True
        return out, ended

    def _append(self, mono: np.ndarray) -> None:
        if mono.size:
            self._pending.append(mono)
            self._pending_samples += mono.size

    def _to_mono_at_rate(self, frame: rtc.AudioFrame) -> list[np.ndarray]:
        samples = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            samples = (
                samples.reshape(-1, frame.num_channels)
                .astype(np.int32)
                .mean(axis=1)
                .astype(np.int16)
            )
        if frame.sample_rate == self.sample_rate:
            return [samples.copy()]
        if self._resampler is None or self._resampler_rate != frame.sample_rate:
            self._resampler = rtc.AudioResampler(
                frame.sample_rate, self.sample_rate, num_channels=1
            )
            self._resampler_rate = frame.sample_rate
        mono = rtc.AudioFrame(samples.tobytes(), frame.sample_rate, 1, samples.size)
        return [np.frombuffer(f.data, dtype=np.int16).copy() for f in self._resampler.push(mono)]

    def _flush_resampler(self) -> list[np.ndarray]:
        if self._resampler is None:
            return []
        out = [np.frombuffer(f.data, dtype=np.int16).copy() for f in self._resampler.flush()]
        self._resampler = None
        return out
