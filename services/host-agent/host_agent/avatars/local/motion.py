"""Idle life for the local avatar: blinks, glances, head sway and breathing. Pure, no I/O.

    motion = IdleMotion(seed=7)
    pose = motion.pose(t=12.48, speech=0.6)   # t: the avatar's media time in seconds

Everything is a function of media time (the frame index over the frame rate), so the motion is
smooth whatever the wall clock does and a test can replay it exactly. Random choices (when to
blink, where to glance) come from a seeded generator and are laid out ahead of time, so asking
for the same `t` twice gives the same pose.

`speech` (0..1, a slow envelope of the voice) adds what people do while they talk: small nods on
stressed syllables, raised brows, eyes back on the camera.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

# A blink: the lid falls fast, rests, and rises more slowly (about 200 ms in all).
BLINK_CLOSE_S = 0.07
BLINK_HOLD_S = 0.04
BLINK_OPEN_S = 0.11
BLINK_S = BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S


@dataclass(frozen=True)
class Pose:
    eyelid: float  # 0 open .. 1 shut
    gaze: float  # -1 left .. 1 right
    brow: float  # 0 relaxed .. 1 raised
    head_dx: float  # design units (1/512 of the frame's shorter side)
    head_dy: float
    breath: float  # 0 exhaled .. 1 inhaled


@dataclass(frozen=True)
class MotionConfig:
    blink_every_s: tuple[float, float] = (1.8, 6.5)  # gap between blinks, at least .. at most
    blink_mean_s: float = 3.6  # people blink some 15-20 times a minute
    double_blink_chance: float = 0.15
    glance_every_s: tuple[float, float] = (1.2, 4.0)
    glance_center_chance: float = 0.55  # otherwise a look to one side
    sway_dx: float = 3.0  # design units
    bob_dy: float = 1.6
    breath_period_s: float = 4.2
    breath_dy: float = 1.2  # the head rises a little with each breath too
    nod_dy: float = 3.0  # head dip at full speech energy
    speech_brow: float = 0.9  # brow raise at full speech energy


class IdleMotion:
    """The avatar's idle animation as a function of media time (seconds)."""

    def __init__(self, seed: int = 7, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._rng = random.Random(seed)
        self._blinks: list[float] = []  # start times, ascending
        self._glances: list[tuple[float, float]] = []  # (start time, gaze target)
        self._planned_until = 0.0
        self._phase = self._rng.uniform(0, 2 * math.pi)

    # -- schedule --

    def _plan(self, until: float) -> None:
        """Lay out blinks and glances up to `until` (and a little beyond)."""
        cfg = self.config
        while self._planned_until <= until + 10.0:
            start = self._planned_until
            end = start + 10.0
            t = self._blinks[-1] if self._blinks else self._rng.uniform(0.6, 2.0)
            if not self._blinks:
                self._blinks.append(t)
            while t < end:
                lo, hi = cfg.blink_every_s
                gap = min(hi, max(lo, self._rng.expovariate(1.0 / cfg.blink_mean_s) + lo * 0.5))
                if self._rng.random() < cfg.double_blink_chance:
                    self._blinks.append(t + BLINK_S + 0.06)
                    t += BLINK_S + 0.06
                t += gap
                self._blinks.append(t)
            g = self._glances[-1][0] if self._glances else 0.0
            if not self._glances:
                self._glances.append((0.0, 0.0))
            while g < end:
                g += self._rng.uniform(*cfg.glance_every_s)
                if self._rng.random() < cfg.glance_center_chance:
                    target = 0.0
                else:
                    target = self._rng.choice((-1.0, -0.5, 0.5, 1.0))
                self._glances.append((g, target))
            self._planned_until = end

    # -- pose --

    def eyelid(self, t: float) -> float:
        """Lid closure at `t`: 0 between blinks, rising to 1 and back during one."""
        self._plan(t)
        i = bisect.bisect_right(self._blinks, t) - 1
        if i < 0:
            return 0.0
        u = t - self._blinks[i]
        if u < BLINK_CLOSE_S:
            return u / BLINK_CLOSE_S
        if u < BLINK_CLOSE_S + BLINK_HOLD_S:
            return 1.0
        if u < BLINK_S:
            return 1.0 - (u - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S
        return 0.0

    def blinks_between(self, t0: float, t1: float) -> list[float]:
        """Blink start times in [t0, t1)."""
        self._plan(t1)
        lo = bisect.bisect_left(self._blinks, t0)
        hi = bisect.bisect_left(self._blinks, t1)
        return self._blinks[lo:hi]

    def gaze(self, t: float, speech: float = 0.0) -> float:
        self._plan(t)
        i = bisect.bisect_right(self._glances, (t, math.inf)) - 1
        target = self._glances[max(i, 0)][1]
        # while talking, mostly look at the viewer
        return target * (1.0 - 0.7 * _clamp01(speech))

    def pose(self, t: float, speech: float = 0.0) -> Pose:
        cfg = self.config
        speech = _clamp01(speech)
        p = self._phase
        tau = 2 * math.pi
        sway = cfg.sway_dx * (
            0.7 * math.sin(tau * t / 6.7 + p) + 0.3 * math.sin(tau * t / 2.9 + 2 * p)
        )
        breath = 0.5 - 0.5 * math.cos(tau * t / cfg.breath_period_s + p)
        bob = cfg.bob_dy * math.sin(tau * t / 4.9 + 0.5 * p)
        return Pose(
            eyelid=self.eyelid(t),
            gaze=self.gaze(t, speech),
            brow=_clamp01(cfg.speech_brow * speech + 0.15 * math.sin(tau * t / 9.1 + p)),
            head_dx=sway * (1.0 + 0.3 * speech),
            head_dy=bob - cfg.breath_dy * breath + cfg.nod_dy * speech,
            breath=breath,
        )


def _clamp01(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
