"""Audio to mouth (`mouth.py`) and the generator that keeps face and voice in step.

Pure: synthetic signals, no LiveKit server (the generator is driven the way `AvatarRunner`
drives it: `push_audio`, `clear_buffer`, and iterating it).
"""

from __future__ import annotations

import asyncio
import functools
import math

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from host_agent.avatars.local.face import MOUTH_LEVELS, FaceRenderer, MouthShape, Viseme
from host_agent.avatars.local.generator import LocalAvatarGenerator
from host_agent.avatars.local.mouth import (
    MouthConfig,
    MouthTracker,
    classify_viseme,
    level_db,
    openness_target,
    quantize,
    smooth,
)

RATE = 24000
FRAME = 960  # 40 ms: one video frame at 25 fps
CFG = MouthConfig()
rng = np.random.default_rng(1234)


def tone(freqs: list[float], seconds: float, dbfs: float = -12.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs))
    x = x / np.sqrt(np.mean(x**2)) * (10 ** (dbfs / 20) * 32767)
    return x.astype(np.int16)


def noise(seconds: float, dbfs: float) -> np.ndarray:
    x = rng.standard_normal(int(RATE * seconds))
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20) * 32767).astype(np.int16)


def frames_of(samples: np.ndarray, n: int = FRAME) -> list[np.ndarray]:
    return [samples[i : i + n] for i in range(0, samples.size - n + 1, n)]


# -- the pure pieces --------------------------------------------------------------------------


def test_level_db() -> None:
    assert level_db(np.zeros(960, np.int16)) == -math.inf
    assert level_db(np.full(960, 32767, np.int16)) == pytest.approx(0.0, abs=0.01)
    assert level_db(tone([440], 0.04, dbfs=-20)) == pytest.approx(-20.0, abs=0.2)


def test_openness_target_is_gated_and_monotonic() -> None:
    peak = -15.0
    assert openness_target(-60.0, peak, CFG) == 0.0  # below the gate
    assert openness_target(peak - CFG.range_db - 1, peak, CFG) == 0.0
    assert openness_target(peak, peak, CFG) == 1.0
    levels = [openness_target(db, peak, CFG) for db in range(-45, -10)]
    assert levels == sorted(levels) and 0 < levels[25] < 1


def test_the_mouth_opens_faster_than_it_closes() -> None:
    dt = 0.04
    opening = smooth(0.0, 1.0, dt, CFG.attack_s, CFG.release_s)
    closing = smooth(1.0, 0.0, dt, CFG.attack_s, CFG.release_s)
    assert opening > 0.9
    assert 0.3 < closing < 0.75  # closes over a few frames: no snapping shut mid-word


def test_quantize() -> None:
    assert quantize(CFG.closed_below - 0.01, Viseme.OPEN, CFG) == MouthShape()
    assert quantize(1.0, Viseme.ROUND, CFG) == MouthShape(Viseme.ROUND, MOUTH_LEVELS)
    levels = [quantize(u / 100, Viseme.WIDE, CFG).level for u in range(101)]
    assert levels == sorted(levels) and set(levels) == set(range(MOUTH_LEVELS + 1))
    assert quantize(0.9, Viseme.REST, CFG).closed


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        (lambda: tone([300, 600], 0.04), Viseme.ROUND),  # "oh": all energy low
        (lambda: tone([700, 1200, 2400], 0.04), Viseme.OPEN),  # "ah": formants spread
        (lambda: tone([300, 2300, 3000], 0.04), Viseme.WIDE),  # "ee": a high second formant
        (lambda: noise(0.04, -20), Viseme.WIDE),  # "s": hiss
    ],
)
def test_spectral_cues_pick_the_viseme(signal: object, expected: Viseme) -> None:
    assert classify_viseme(signal(), RATE, CFG) is expected  # type: ignore[operator]


# -- the tracker ------------------------------------------------------------------------------


def test_silence_keeps_the_mouth_at_rest() -> None:
    tracker = MouthTracker(RATE, 0.04)
    shapes = [tracker.update(None) for _ in range(10)]
    shapes += [tracker.update(np.zeros(FRAME, np.int16)) for _ in range(10)]
    shapes += [tracker.update(f) for f in frames_of(noise(1.0, -62))]  # hum under the gate
    assert all(s.closed for s in shapes)


def test_a_voice_opens_the_mouth_at_once_and_it_closes_soon_after() -> None:
    tracker = MouthTracker(RATE, 0.04)
    voice = frames_of(tone([700, 1200], 0.6, dbfs=-16))
    shapes = [tracker.update(f) for f in voice]
    assert shapes[0].level >= 3  # the first frame of the sound already shows it
    assert all(s.level >= 3 for s in shapes)
    after = [tracker.update(None) for _ in range(10)]
    assert after[0].level >= 1  # not snapped shut
    closed_at = next(i for i, s in enumerate(after) if s.closed)
    assert closed_at <= 3  # shut within 160 ms
    assert all(s.closed for s in after[closed_at:])


def test_louder_syllables_open_wider() -> None:
    tracker = MouthTracker(RATE, 0.04)
    for f in frames_of(tone([700, 1200], 0.5, dbfs=-14)):  # the voice's peak level
        tracker.update(f)
    levels = {}
    for db in (-16, -24, -30):
        for f in frames_of(tone([700, 1200], 0.12, dbfs=db)):
            shape = tracker.update(f)
        levels[db] = shape.level
    assert levels[-16] > levels[-24] > levels[-30]


def test_a_quiet_voice_still_moves_the_lips() -> None:
    tracker = MouthTracker(RATE, 0.04)
    shapes = [tracker.update(f) for f in frames_of(tone([700, 1200], 2.0, dbfs=-32))]
    assert sum(s.level >= 3 for s in shapes[-10:]) == 10  # the reference adapted down


def test_one_odd_frame_does_not_flip_the_viseme() -> None:
    tracker = MouthTracker(RATE, 0.04)
    ah = frames_of(tone([700, 1200, 2400], 0.4, dbfs=-16))
    for f in ah:
        tracker.update(f)
    blip = tracker.update(tone([300, 600], 0.04, dbfs=-16))
    assert blip.viseme is Viseme.OPEN
    oh = [tracker.update(f) for f in frames_of(tone([300, 600], 0.2, dbfs=-16))]
    assert oh[-1].viseme is Viseme.ROUND


# -- the generator ----------------------------------------------------------------------------


@functools.cache
def small_renderer() -> FaceRenderer:
    return FaceRenderer(128, 128, supersample=2)


def audio_frames(samples: np.ndarray, rate: int = RATE, ms: int = 100) -> list[rtc.AudioFrame]:
    n = rate * ms // 1000
    return [
        rtc.AudioFrame(samples[i : i + n].tobytes(), rate, 1, samples[i : i + n].size)
        for i in range(0, samples.size, n)
    ]


async def take(gen: LocalAvatarGenerator, count: int) -> list[object]:
    """The next `count` items the generator yields (what the runner would forward)."""
    out: list[object] = []
    iterator = gen.__aiter__()
    async with asyncio.timeout(10):
        while len(out) < count:
            out.append(await iterator.__anext__())
    return out


async def test_idle_frames_keep_coming_with_silence_for_the_audio_track() -> None:
    gen = LocalAvatarGenerator(small_renderer(), fps=25, sample_rate=RATE)
    silence: list[rtc.AudioFrame] = []

    async def sink(frame: rtc.AudioFrame) -> None:
        silence.append(frame)

    gen.idle_audio_sink = sink
    items = await take(gen, 50)
    assert all(isinstance(i, rtc.VideoFrame) for i in items)
    assert {(i.width, i.height) for i in items} == {(128, 128)}  # type: ignore[attr-defined]
    assert len(silence) == 50 and all(f.samples_per_channel == FRAME for f in silence)
    assert not any(np.frombuffer(f.data, np.int16).any() for f in silence)
    assert gen.last_state.mouth.closed and gen.speech_frames == 0


async def test_an_utterance_comes_out_in_step_with_the_face_and_then_ends() -> None:
    gen = LocalAvatarGenerator(small_renderer(), fps=25, sample_rate=RATE)
    voice = tone([700, 1200], 1.01, dbfs=-16)  # not a whole number of frames
    for frame in audio_frames(voice):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())
    items = await take(gen, 2 * 26 + 1 + 5)
    speech, end, idle = items[:52], items[52], items[53:]
    # video, audio, video, audio ...: each frame's picture comes with its 40 ms of sound
    assert all(isinstance(v, rtc.VideoFrame) for v in speech[0::2])
    assert all(isinstance(a, rtc.AudioFrame) for a in speech[1::2])
    audio = np.concatenate([np.frombuffer(a.data, np.int16) for a in speech[1::2]])  # type: ignore[attr-defined]
    assert audio.size == 26 * FRAME  # the last frame padded with silence
    assert (audio[: voice.size] == voice).all() and not audio[voice.size :].any()
    assert isinstance(end, AudioSegmentEnd)
    assert all(isinstance(v, rtc.VideoFrame) for v in idle)  # back to idle afterwards
    assert gen.speech_frames == 26


async def test_the_mouth_follows_the_voice_frame_by_frame() -> None:
    gen = LocalAvatarGenerator(small_renderer(), fps=25, sample_rate=RATE)
    pattern = np.concatenate(
        [tone([700, 1200], 0.4, dbfs=-16), np.zeros(int(RATE * 0.4), np.int16)] * 2
    )
    for frame in audio_frames(pattern):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())
    shapes = []
    iterator = gen.__aiter__()
    async with asyncio.timeout(10):
        while len(shapes) < 40:
            item = await iterator.__anext__()
            if isinstance(item, rtc.VideoFrame):
                shapes.append(gen.last_state.mouth)
    loud = shapes[0:10] + shapes[20:30]
    quiet = shapes[14:20] + shapes[34:40]  # 160 ms into each pause
    assert all(s.level >= 3 for s in loud)
    assert all(s.closed for s in quiet)


async def test_other_rates_and_stereo_are_converted() -> None:
    gen = LocalAvatarGenerator(small_renderer(), fps=25, sample_rate=RATE)
    mono = tone([500], 1.0, dbfs=-16, rate=22050)
    stereo = np.repeat(mono, 2)
    n = 2205
    for i in range(0, mono.size, n):
        chunk = stereo[2 * i : 2 * (i + n)]
        await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), 22050, 2, chunk.size // 2))
    await gen.push_audio(AudioSegmentEnd())
    items = await take(gen, 60)
    audio = [i for i in items if isinstance(i, rtc.AudioFrame)]
    ends = [k for k, i in enumerate(items) if isinstance(i, AudioSegmentEnd)]
    assert len(ends) == 1
    assert all(a.sample_rate == RATE and a.num_channels == 1 for a in audio)
    assert abs(len(audio) - 25) <= 1  # one second of audio is still one second


async def test_clear_buffer_stops_the_voice_at_once_and_the_cut_stream_does_not_count() -> None:
    gen = LocalAvatarGenerator(small_renderer(), fps=25, sample_rate=RATE)
    for frame in audio_frames(tone([700, 1200], 2.0, dbfs=-16)):
        await gen.push_audio(frame)
    first = await take(gen, 10)
    assert sum(isinstance(i, rtc.AudioFrame) for i in first) == 5
    gen.clear_buffer()
    assert gen.mouth.shape.closed
    await gen.push_audio(AudioSegmentEnd())  # the interrupted stream's trailer
    after = await take(gen, 10)
    assert all(isinstance(i, rtc.VideoFrame) for i in after)  # no audio, no segment end
    assert gen.last_state.mouth.closed
    # the next utterance plays normally
    for frame in audio_frames(tone([700, 1200], 0.2, dbfs=-16)):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())
    nxt = await take(gen, 11)
    assert sum(isinstance(i, rtc.AudioFrame) for i in nxt) == 5
    assert isinstance(nxt[10], AudioSegmentEnd)


@pytest.mark.parametrize(("fps", "rate"), [(30, 24000), (7, 24000), (24, 22050)])
async def test_frame_sizes_add_up_to_the_audio_at_any_rate(fps: int, rate: int) -> None:
    gen = LocalAvatarGenerator(small_renderer(), fps=fps, sample_rate=rate)
    sizes = [gen._samples_in_frame(i) for i in range(fps * 3)]
    assert sum(sizes) == rate * 3 and max(sizes) - min(sizes) <= 1


async def test_a_mouth_lag_delays_the_lips_not_the_voice() -> None:
    shapes: dict[float, list[bool]] = {}
    for lag in (0.0, 0.04):
        gen = LocalAvatarGenerator(small_renderer(), fps=25, sample_rate=RATE, mouth_lag_s=lag)
        for frame in audio_frames(tone([700, 1200], 0.4, dbfs=-16)):
            await gen.push_audio(frame)
        await gen.push_audio(AudioSegmentEnd())
        opened: list[bool] = []
        audio_at: list[int] = []
        iterator = gen.__aiter__()
        async with asyncio.timeout(10):
            while len(opened) < 15:
                item = await iterator.__anext__()
                if isinstance(item, rtc.VideoFrame):
                    opened.append(not gen.last_state.mouth.closed)
                elif isinstance(item, rtc.AudioFrame):
                    audio_at.append(len(opened) - 1)
        assert audio_at[0] == 0  # the voice goes out with the first frame either way
        shapes[lag] = opened
    assert shapes[0.0].index(True) == 0
    assert shapes[0.04].index(True) == 1  # one 40 ms frame later
    with pytest.raises(ValueError, match="mouth_lag_s"):
        LocalAvatarGenerator(small_renderer(), fps=25, mouth_lag_s=2.0)
