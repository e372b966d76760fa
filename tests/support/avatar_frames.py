"""Reading the local avatar's drawn frames, for its room tests and `bench/bench_avatar.py`."""

from __future__ import annotations

import numpy as np

from host_agent.avatars.local.face import FaceRenderer


def mouth_opening(renderer: FaceRenderer, rgba: np.ndarray) -> int:
    """Dark pixels (the inside of an open mouth) wherever the moving head may have put it."""
    x0, y0, x1, y1 = renderer.mouth_box()
    m = renderer._motion_px + 2
    box = rgba[max(0, y0 - m) : y1 + m, max(0, x0 - m) : x1 + m, :3].astype(np.int32)
    luma = (299 * box[..., 0] + 587 * box[..., 1] + 114 * box[..., 2]) // 1000
    return int((luma < 60).sum())
