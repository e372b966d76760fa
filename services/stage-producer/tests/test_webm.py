"""The WebM writer: sizes, duration, key frames and cues read back as written."""

from __future__ import annotations

import pytest

from stage_producer.capture.webm import (
    CLUSTER,
    CUE_POINT,
    EncodedFrame,
    iter_elements,
    read_webm,
    write_webm,
)


def frames(count: int, fps: int, key_every: int) -> list[EncodedFrame]:
    return [
        EncodedFrame(round(i * 1e6 / fps), i % key_every == 0, bytes([i % 256]) * (50 + i))
        for i in range(count)
    ]


def test_a_clip_reads_back_with_its_duration_size_and_frames() -> None:
    data = write_webm(frames(192, 24, 48), width=1280, height=720, fps=24)
    info = read_webm(data)
    assert info.doc_type == "webm"
    assert info.codec == "V_VP8"
    assert (info.width, info.height) == (1280, 720)
    assert info.duration_s == pytest.approx(8.0, abs=0.001)
    assert info.frames == 192
    assert info.key_frames == 4


def test_each_key_frame_starts_a_cluster_and_has_a_cue() -> None:
    data = write_webm(frames(100, 25, 25), width=640, height=360, fps=25)
    ids = [element_id for element_id, _, _ in iter_elements(data)]
    assert ids.count(CLUSTER) == 4
    assert ids.count(CUE_POINT) == 4


def test_a_clip_must_start_with_a_key_frame() -> None:
    with pytest.raises(ValueError, match="key frame"):
        write_webm([EncodedFrame(0, False, b"x")], width=2, height=2, fps=1)
    with pytest.raises(ValueError, match="at least one frame"):
        write_webm([], width=2, height=2, fps=1)


def test_broken_files_are_refused() -> None:
    data = write_webm(frames(10, 10, 10), width=2, height=2, fps=10)
    with pytest.raises((ValueError, IndexError)):
        read_webm(data[: len(data) // 2])
