"""The local avatar's drawing (`face.py`) and idle motion (`motion.py`): pure and fast."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from host_agent.avatars.local.face import (
    KEY_GREEN,
    MOUTH_LEVELS,
    FaceRenderer,
    FaceState,
    MouthShape,
    Palette,
    Viseme,
)
from host_agent.avatars.local.motion import BLINK_S, IdleMotion


@functools.cache
def renderer(width: int = 256, height: int = 256) -> FaceRenderer:
    return FaceRenderer(width, height)


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the pixels that differ, None when none do."""
    rows, cols = np.nonzero((a != b).any(axis=2))
    if rows.size == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def inside(box: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return outer[0] <= box[0] and outer[1] <= box[1] and box[2] <= outer[2] and box[3] <= outer[3]


def dark_pixels(frame: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    rgb = frame[y0:y1, x0:x1, :3].astype(np.int32)
    return int(((299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2]) // 1000 < 70).sum())


# -- face -------------------------------------------------------------------------------------


def test_a_frame_is_opaque_rgba_of_the_asked_size_on_pure_green() -> None:
    frame = renderer().render(FaceState())
    assert frame.shape == (256, 256, 4) and frame.dtype == np.uint8
    assert (frame[..., 3] == 255).all()
    green = np.array(KEY_GREEN, dtype=np.uint8)
    # around the head and above the shoulders there is nothing but the key colour
    assert (frame[:20, :, :3] == green).all()
    assert (frame[:150, :20, :3] == green).all() and (frame[:150, -20:, :3] == green).all()


def test_the_character_has_no_key_green_in_it() -> None:
    """Only anti-aliased edge pixels may lean green; the face itself must survive keying."""
    r = renderer()
    frame = r.render(FaceState(mouth=MouthShape(Viseme.OPEN, 3)))
    x0, y0 = r.to_px(200, 150)  # forehead to chin, cheek to cheek
    x1, y1 = r.to_px(312, 330)
    rgb = frame[y0:y1, x0:x1, :3].astype(np.int32)
    greenish = (rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40)
    assert not greenish.any()


def test_rendering_is_deterministic_and_fills_a_given_buffer() -> None:
    r = renderer()
    state = FaceState(mouth=MouthShape(Viseme.ROUND, 2), eyelid=0.4, gaze=0.5, head_dx=3)
    buffer = bytearray(256 * 256 * 4)
    view = np.frombuffer(buffer, dtype=np.uint8).reshape(256, 256, 4)
    assert r.render(state, out=view) is view
    assert bytes(buffer) == r.render(state).tobytes()
    with pytest.raises(ValueError, match="out must be"):
        r.render(state, out=np.zeros((256, 255, 4), dtype=np.uint8))


@pytest.mark.parametrize("viseme", [Viseme.OPEN, Viseme.ROUND, Viseme.WIDE])
def test_mouth_shapes_change_only_the_mouth_and_grow_with_each_level(viseme: Viseme) -> None:
    r = renderer()
    rest = r.render(FaceState())
    assert dark_pixels(rest, r.mouth_box()) == 0  # the resting mouth is closed
    sizes = []
    for level in range(1, MOUTH_LEVELS + 1):
        frame = r.render(FaceState(mouth=MouthShape(viseme, level)))
        box = changed_box(rest, frame)
        assert box is not None and inside(box, r.mouth_box())
        assert dark_pixels(frame, r.mouth_box()) > 10  # the inside of the mouth shows
        sizes.append(int((frame != rest).any(axis=2).sum()))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_level_zero_of_any_viseme_is_the_resting_mouth() -> None:
    r = renderer()
    assert MouthShape(Viseme.WIDE, 0).closed and MouthShape(Viseme.REST, 3).closed
    rest = r.render(FaceState())
    assert (r.render(FaceState(mouth=MouthShape(Viseme.WIDE, 0))) == rest).all()
    with pytest.raises(ValueError):
        MouthShape(Viseme.OPEN, MOUTH_LEVELS + 1)


def test_a_blink_changes_only_the_eyes_and_hides_the_eye_whites() -> None:
    r = renderer()
    open_eyes = r.render(FaceState())
    x0, y0, x1, y1 = r.eyes_box()

    def whites(frame: np.ndarray) -> int:
        return int((frame[y0:y1, x0:x1, :3].min(axis=2) > 235).sum())

    counts = [whites(open_eyes)]
    for eyelid in (0.4, 0.75, 1.0):
        frame = r.render(FaceState(eyelid=eyelid))
        box = changed_box(open_eyes, frame)
        assert box is not None and inside(box, r.eyes_box())
        counts.append(whites(frame))
    assert counts[0] > 50 and counts[1] < counts[0] and counts == sorted(counts, reverse=True)
    assert counts[-1] == 0


def test_gaze_moves_the_irises() -> None:
    r = renderer()
    x0, y0, x1, y1 = r.eyes_box()

    def iris_centre_x(frame: np.ndarray) -> float:
        rgb = frame[y0:y1, x0:x1, :3].astype(np.int32)
        dark = np.nonzero(rgb.sum(axis=2) < 120)  # pupils (and lash lines)
        return float(dark[1].mean())

    left = iris_centre_x(r.render(FaceState(gaze=-1.0)))
    right = iris_centre_x(r.render(FaceState(gaze=1.0)))
    assert right - left > 3


def test_head_offset_moves_the_head_and_breathing_lifts_the_shoulders() -> None:
    r = renderer()

    def first_row_of(frame: np.ndarray, column: int) -> int:
        not_green = (frame[:, column, :3] != np.array(KEY_GREEN)).any(axis=1)
        return int(np.argmax(not_green))

    def first_col_of(frame: np.ndarray, row: int) -> int:
        not_green = (frame[row, :, :3] != np.array(KEY_GREEN)).any(axis=1)
        return int(np.argmax(not_green))

    base = r.render(FaceState())
    moved = r.render(FaceState(head_dx=6, head_dy=-4))
    row = r.to_px(0, 200)[1]
    assert first_col_of(moved, row) - first_col_of(base, row) == round(6 * r.scale)
    top = r.to_px(256, 0)[0]
    assert first_row_of(base, top) - first_row_of(moved, top) == round(4 * r.scale)
    # the shoulders (well outside the head) rise with an in-breath
    shoulder = r.to_px(100, 0)[0]
    assert first_row_of(r.render(FaceState(breath=1.0)), shoulder) < first_row_of(base, shoulder)
    # offsets beyond the margin are clamped, never drawn outside the frame
    assert r.render(FaceState(head_dx=500, head_dy=-500)).shape == base.shape


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (128, 128)])
def test_other_sizes_keep_the_character_centred_on_green(size: tuple[int, int]) -> None:
    width, height = size
    r = FaceRenderer(width, height, supersample=2)
    frame = r.render(FaceState(mouth=MouthShape(Viseme.OPEN, 4)))
    assert frame.shape == (height, width, 4)
    assert (frame[0, :, :3] == np.array(KEY_GREEN)).all()
    mx0, my0, mx1, my1 = r.mouth_box()
    assert abs((mx0 + mx1) / 2 - width / 2) <= 2
    assert dark_pixels(frame, r.mouth_box()) > 0


def test_other_backgrounds_and_a_too_small_frame() -> None:
    blue = FaceRenderer(128, 128, palette=Palette(background=(0, 0, 255)), supersample=2)
    assert (blue.render(FaceState())[0, :, :3] == np.array((0, 0, 255))).all()
    with pytest.raises(ValueError, match="at least 64x64"):
        FaceRenderer(32, 32)


# -- idle motion ------------------------------------------------------------------------------


def test_blinks_come_at_natural_intervals() -> None:
    motion = IdleMotion(seed=11)
    starts = motion.blinks_between(0.0, 600.0)
    per_minute = len(starts) / 10
    assert 10 <= per_minute <= 26  # people blink some 15-20 times a minute
    gaps = np.diff(starts)
    singles = gaps[gaps > 0.5]  # the rest are the second halves of double blinks
    assert singles.min() >= 1.5 and singles.max() <= 7.0
    assert 2.5 <= float(np.mean(singles)) <= 5.5
    assert 0 < (gaps <= 0.5).sum() < 0.35 * len(gaps)  # now and then a double blink


def test_every_blink_is_seen_shut_at_25_fps_and_the_eyes_are_open_otherwise() -> None:
    motion = IdleMotion(seed=5)
    fps = 25
    lids = np.array([motion.eyelid(i / fps) for i in range(fps * 120)])
    assert (lids > 0).mean() < 0.1
    for start in motion.blinks_between(1.0, 119.0):
        window = lids[int(start * fps) : int((start + BLINK_S) * fps) + 2]
        assert window.max() >= 0.75


def test_the_head_sways_and_breathes_within_bounds() -> None:
    motion = IdleMotion(seed=2)
    poses = [motion.pose(i / 25) for i in range(25 * 30)]
    dx = np.array([p.head_dx for p in poses])
    dy = np.array([p.head_dy for p in poses])
    breath = np.array([p.breath for p in poses])
    assert dx.std() > 0.8 and np.abs(dx).max() <= 8
    assert dy.std() > 0.4 and np.abs(dy).max() <= 8
    assert breath.min() < 0.05 and breath.max() > 0.95
    # consecutive frames move by less than a pixel or so: smooth, not jittery
    assert np.abs(np.diff(dx)).max() < 1.0 and np.abs(np.diff(dy)).max() < 1.0


def test_motion_is_a_function_of_time() -> None:
    a, b = IdleMotion(seed=9), IdleMotion(seed=9)
    times = [37.2, 3.0, 120.5, 3.0, 0.0]
    assert [a.pose(t) for t in times] == [b.pose(t) for t in reversed(times)][::-1]
    assert IdleMotion(seed=10).blinks_between(0, 60) != a.blinks_between(0, 60)


def test_speech_nods_raises_brows_and_looks_at_the_viewer() -> None:
    motion = IdleMotion(seed=4)
    times = [i / 25 for i in range(25 * 20)]
    quiet = [motion.pose(t, speech=0.0) for t in times]
    talking = [motion.pose(t, speech=1.0) for t in times]
    assert np.mean([abs(p.gaze) for p in talking]) < np.mean([abs(p.gaze) for p in quiet])
    assert min(t.brow - q.brow for t, q in zip(talking, quiet, strict=True)) > 0.5
    assert min(t.head_dy - q.head_dy for t, q in zip(talking, quiet, strict=True)) > 2
