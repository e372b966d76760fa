"""The local avatar's face: pure drawing, no I/O.

    renderer = FaceRenderer(512, 512)
    rgba = renderer.render(FaceState(mouth=MouthShape(Viseme.OPEN, 3), eyelid=0.0))

A friendly cartoon host (head and shoulders) on a keyable pure green background. Everything is
drawn once, anti-aliased, when the renderer is built (Pillow at 4x, reduced with a premultiplied
box filter), and cut into pieces that a frame only has to copy:

- the body (shoulders, neck), one opaque strip on the background, shifted by breathing;
- the head (hair, ears, face), alpha-blended at the head's offset (bob and sway); most of its
  rows lie over plain background and are copied opaque, only the rows over the neck are blended;
- patches for the eyes (lid closure x gaze), the brows (raise) and the mouth (rest, then several
  openness levels of three visemes), each cut from the finished head so it sits seamlessly.

A frame is therefore a handful of numpy slice copies and one small blend: well under 2 ms at
512x512. The design is laid out on a 512x512 square and scaled to the frame's shorter side.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
Point = tuple[float, float]

KEY_GREEN: RGB = (0, 255, 0)
"""The keyable background: pure green, nothing of it anywhere in the character."""

MOUTH_LEVELS = 5
"""Openness levels per viseme (1..MOUTH_LEVELS); level 0 is the closed, resting mouth."""
EYELID_STEPS = (0.0, 0.4, 0.75, 1.0)
"""Lid closures drawn (0 open, 1 shut); a blink walks through them."""
GAZE_STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
"""Horizontal gaze positions drawn (-1 the viewer's left, 1 right)."""
BROW_STEPS = (0.0, 0.5, 1.0)
"""Brow raises drawn (0 relaxed, 1 raised)."""

DESIGN = 512.0  # the layout's square; everything below is in these units
_HEAD_CENTER = (256.0, 232.0)
_FACE_RX, _FACE_RY = 112.0, 132.0
_EYE_Y = 242.0
_EYE_DX = 47.0
_BROW_Y = 200.0
_MOUTH_Y = 312.0
_HEAD_MOTION_MARGIN = 8.0  # design units the head may move each way
_BREATH_MARGIN = 4.0  # design units the body may rise


class Viseme(enum.Enum):
    """Mouth families; the openness level picks the size within one."""

    REST = "rest"  # closed, a soft smile
    OPEN = "open"  # "ah": jaw dropped
    ROUND = "round"  # "oo", "oh": lips rounded, narrow
    WIDE = "wide"  # "ee", "s": spread, teeth showing


@dataclass(frozen=True)
class MouthShape:
    viseme: Viseme = Viseme.REST
    level: int = 0  # 0 = closed (any viseme), 1..MOUTH_LEVELS

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MOUTH_LEVELS:
            raise ValueError(f"mouth level must be 0..{MOUTH_LEVELS}, got {self.level}")

    @property
    def closed(self) -> bool:
        return self.level == 0 or self.viseme is Viseme.REST


REST_MOUTH = MouthShape()


@dataclass(frozen=True)
class FaceState:
    """One frame's pose. Offsets are in design units (1/512 of the frame's shorter side)."""

    mouth: MouthShape = REST_MOUTH
    eyelid: float = 0.0  # 0 open .. 1 shut
    gaze: float = 0.0  # -1 left .. 1 right
    brow: float = 0.0  # 0 relaxed .. 1 raised
    head_dx: float = 0.0
    head_dy: float = 0.0
    breath: float = 0.0  # 0 exhaled .. 1 inhaled (the shoulders rise)


@dataclass(frozen=True)
class Palette:
    background: RGB = KEY_GREEN
    skin: RGB = (247, 206, 178)
    skin_shade: RGB = (226, 168, 138)
    skin_line: RGB = (196, 124, 96)
    hair: RGB = (58, 36, 60)
    hair_light: RGB = (104, 70, 104)
    iris: RGB = (122, 74, 42)
    iris_light: RGB = (176, 118, 62)
    pupil: RGB = (30, 18, 20)
    lash: RGB = (44, 26, 40)
    eye_white: RGB = (255, 253, 250)
    eye_shadow: RGB = (222, 210, 214)
    lips: RGB = (214, 92, 108)
    lips_dark: RGB = (168, 60, 78)
    mouth_inside: RGB = (88, 24, 40)
    teeth: RGB = (255, 252, 246)
    tongue: RGB = (226, 112, 128)
    blush: RGB = (255, 128, 138)
    shirt: RGB = (92, 76, 222)
    shirt_shade: RGB = (70, 56, 186)
    shirt_trim: RGB = (255, 214, 102)
    clip_dark: RGB = (214, 140, 40)


DEFAULT_PALETTE = Palette()


# --------------------------------------------------------------------------------------------
# geometry helpers (design units)


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, steps: int = 32) -> list[Point]:
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a, b, c, d = (np.array(p) for p in (p0, p1, p2, p3))
    pts = (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t**2 * c + t**3 * d
    return [(float(x), float(y)) for x, y in pts]


def _face_outline(steps: int = 180) -> list[Point]:
    """An egg: round forehead, cheeks that narrow into a soft chin."""
    cx, cy = _HEAD_CENTER
    pts: list[Point] = []
    for i in range(steps):
        t = 2 * math.pi * i / steps
        s = math.sin(t)  # > 0: lower half (y grows downward)
        narrow = 1.0 - 0.17 * max(0.0, s) ** 2.2
        pts.append((cx + _FACE_RX * math.cos(t) * narrow, cy + _FACE_RY * s))
    return pts


def _ellipse_pts(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> list[Point]:
    n = max(8, int(abs(a1 - a0) / (2 * math.pi) * 120))
    return [
        (cx + rx * math.cos(a), cy + ry * math.sin(a))
        for a in np.linspace(a0, a1, n, dtype=np.float64)
    ]


def _offset_curve(points: Sequence[Point], widths: Sequence[float]) -> list[Point]:
    """A tapered stroke as a polygon: the curve pushed out by width/2 on each side."""
    p = np.array(points, dtype=np.float64)
    tangent = np.gradient(p, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    half = np.asarray(widths, dtype=np.float64)[:, None] / 2
    left, right = p + normal * half, p - normal * half
    return [(float(x), float(y)) for x, y in np.concatenate([left, right[::-1]])]


def _taper(n: int, thin: float, thick: float, peak: float = 0.5) -> list[float]:
    """Widths along a stroke: thin at both ends, thickest at `peak` (0..1)."""
    out = []
    for i in range(n):
        u = i / (n - 1)
        d = u / peak if u < peak else (1 - u) / (1 - peak)
        out.append(thin + (thick - thin) * math.sin(d * math.pi / 2) ** 0.8)
    return out


# --------------------------------------------------------------------------------------------
# drawing at a supersampled scale


class _Pen:
    """Draws design-unit shapes onto a Pillow image whose pixel (0,0) is design `origin`."""

    def __init__(
        self, image: Image.Image, scale: float, origin: Point = (0.0, 0.0), supersample: int = 1
    ) -> None:
        self.image = image
        self.scale = scale
        self.origin = origin
        self.supersample = supersample
        self.draw = ImageDraw.Draw(image)

    def p(self, pt: Point) -> Point:
        return ((pt[0] - self.origin[0]) * self.scale, (pt[1] - self.origin[1]) * self.scale)

    def polygon(self, pts: Sequence[Point], fill: RGB | int) -> None:
        self.draw.polygon([self.p(q) for q in pts], fill=fill)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB | int) -> None:
        x0, y0 = self.p((cx - rx, cy - ry))
        x1, y1 = self.p((cx + rx, cy + ry))
        self.draw.ellipse([x0, y0, x1, y1], fill=fill)

    def stroke(self, pts: Sequence[Point], width: float | Sequence[float], fill: RGB | int) -> None:
        if isinstance(width, int | float):
            widths = [float(width)] * len(pts)
        else:  # any number of samples along the stroke, stretched to its points
            src = np.linspace(0.0, 1.0, len(width))
            widths = list(np.interp(np.linspace(0.0, 1.0, len(pts)), src, np.asarray(width)))
        self.polygon(_offset_curve(pts, widths), fill)
        for end, w in ((pts[0], widths[0]), (pts[-1], widths[-1])):  # round caps
            if w > 0.6:
                self.ellipse(end[0], end[1], w / 2, w / 2, fill)

    def mask(self) -> _Pen:
        """A blank L-mode pen of the same size and mapping (for clipping)."""
        return _Pen(Image.new("L", self.image.size, 0), self.scale, self.origin, self.supersample)

    def soft(self, radius: float) -> Image.Image:
        """This (mask) pen's image blurred by `radius` design units."""
        return self.soften(self.image, radius)

    def soften(self, mask: Image.Image, radius: float) -> Image.Image:
        return _soft(mask, radius * self.scale, self.supersample)


def _paint(target: Image.Image, colour: RGB, mask: Image.Image, opacity: float = 1.0) -> None:
    """Fill `colour` through `mask` (L) onto an RGBA `target`, in place."""
    if opacity < 1.0:
        mask = mask.point(lambda v: int(v * opacity))
    layer = Image.new("RGBA", target.size, (*colour, 255))
    target.paste(layer, (0, 0), mask)


def _reduce_rgba(image: Image.Image, factor: int) -> np.ndarray:
    """Box-reduce an RGBA image by `factor` with premultiplied alpha (no dark fringes)."""
    small = image.convert("RGBa").reduce(factor).convert("RGBA")
    return np.asarray(small, dtype=np.uint8).copy()


def _soft(mask: Image.Image, radius: float, factor: int) -> Image.Image:
    """Gaussian-blur a supersampled mask cheaply: blur at 1/`factor` size, scale back up.

    `radius` is in supersampled pixels; a soft mask loses nothing at the lower resolution.
    """
    if factor <= 1:
        return mask.filter(ImageFilter.GaussianBlur(radius))
    small = mask.reduce(factor).filter(ImageFilter.GaussianBlur(radius / factor))
    return small.resize(mask.size, Image.Resampling.BILINEAR)


# --------------------------------------------------------------------------------------------
# the character


def _draw_body(pen: _Pen, pal: Palette) -> None:
    cx = _HEAD_CENTER[0]
    top = 388.0  # where the shoulders meet the neck
    neck = [
        (cx - 40, 290),
        (cx + 40, 290),
        (cx + 43, top - 8),
        (cx + 90, top + 4),
        (cx + 90, top + 70),
        (cx - 90, top + 70),
        (cx - 90, top + 4),
        (cx - 43, top - 8),
    ]
    pen.polygon(neck, pal.skin)
    neck_mask = pen.mask()
    neck_mask.polygon(neck, 255)
    shade = pen.mask()
    shade.polygon([(cx - 40, 290), (cx - 28, 290), (cx - 32, top), (cx - 46, top)], 255)
    shade.polygon([(cx + 28, 290), (cx + 40, 290), (cx + 46, top), (cx + 32, top)], 255)
    shade.ellipse(cx, 362, 44, 14, 255)  # under the chin
    _paint(pen.image, pal.skin_shade, _clip(shade.soft(6), neck_mask.image))
    # shoulders and shirt, with a scooped neckline, running off the bottom edge
    neckline = _bezier(
        (cx + 58, top - 2), (cx + 48, top + 60), (cx - 48, top + 60), (cx - 58, top - 2)
    )
    body = (
        _bezier((cx - 58, top - 2), (cx - 140, top - 6), (cx - 196, top + 18), (cx - 218, top + 96))
        + [(cx - 236, 620), (cx + 236, 620)]
        + _bezier(
            (cx + 218, top + 96), (cx + 196, top + 18), (cx + 140, top - 6), (cx + 58, top - 2)
        )
        + neckline
    )
    pen.polygon(body, pal.shirt)
    shirt = pen.mask()
    shirt.polygon(body, 255)
    fold = pen.mask()
    fold.polygon([(cx - 250, 620), (cx - 214, 440), (cx - 150, 620)], 255)
    fold.polygon([(cx + 250, 620), (cx + 214, 440), (cx + 150, 620)], 255)
    fold.polygon([(cx - 80, 620), (cx - 60, 500), (cx - 40, 620)], 255)
    _paint(pen.image, pal.shirt_shade, _clip(fold.soft(12), shirt.image), 0.9)
    collar = pen.mask()
    collar.stroke(neckline[4:-4], 12.0, 255)
    _paint(pen.image, pal.skin_shade, _clip(collar.soft(5), neck_mask.image), 0.45)
    pen.stroke(neckline, 7.0, pal.shirt_trim)


def _hair_back(pen: _Pen, pal: Palette) -> None:
    cx, cy = _HEAD_CENTER
    shape = _ellipse_pts(cx, cy - 18, 140, 150, math.pi, 2 * math.pi)
    for side in (1, -1):  # right lock top-down, then the left one bottom-up
        lock = (
            _bezier(
                (cx + side * 140, cy - 18),
                (cx + side * 150, cy + 60),
                (cx + side * 148, cy + 108),
                (cx + side * 122, cy + 118),
            )
            + _bezier(
                (cx + side * 122, cy + 118),
                (cx + side * 108, cy + 122),
                (cx + side * 96, cy + 114),
                (cx + side * 94, cy + 100),
            )
            + _bezier(
                (cx + side * 94, cy + 100),
                (cx + side * 90, cy + 80),
                (cx + side * 86, cy + 60),
                (cx + side * 80, cy + 30),
            )
        )
        shape += lock if side > 0 else lock[::-1]
    pen.polygon(shape, pal.hair)
    # soft sheen on the outer locks
    sheen = pen.mask()
    for side in (-1, 1):
        sheen.stroke(
            _bezier(
                (cx + side * 128, cy - 30),
                (cx + side * 136, cy + 20),
                (cx + side * 132, cy + 64),
                (cx + side * 120, cy + 96),
            ),
            _taper(32, 1.0, 7.0),
            255,
        )
    _paint(pen.image, pal.hair_light, sheen.soft(2), 0.7)


def _face(pen: _Pen, pal: Palette) -> Image.Image:
    """The face and its shading; returns the face mask (for clipping later layers)."""
    outline = _face_outline()
    face_mask = pen.mask()
    face_mask.polygon(outline, 255)
    # a thin warm outline: the face drawn slightly larger in the line colour first
    cx, cy = _HEAD_CENTER
    grown = [(cx + (x - cx) * 1.018, cy + (y - cy) * 1.015) for x, y in outline]
    pen.polygon(grown, pal.skin_line)
    pen.polygon(outline, pal.skin)
    # rim shading: darker toward the edge of the face, strongest along the jaw
    inner = face_mask.soft(16)
    a = np.asarray(face_mask.image, dtype=np.float32) / 255.0
    b = np.asarray(inner, dtype=np.float32) / 255.0
    ys = np.linspace(0.0, 1.0, a.shape[0], dtype=np.float32)[:, None]
    rim = np.clip((a - b) * 2.0, 0, 1) * (0.35 + 0.65 * ys)
    _paint(pen.image, pal.skin_shade, Image.fromarray((rim * 255).astype(np.uint8)), 0.75)
    # cheeks
    blush = pen.mask()
    for side in (-1, 1):
        blush.ellipse(cx + side * 70, 298, 24, 15, 255)
    _paint(pen.image, pal.blush, blush.soft(9), 0.55)
    # nose: a soft shadow on one side and a highlight on the tip
    nose = pen.mask()
    nose.stroke(_bezier((cx - 4, 262), (cx - 10, 280), (cx - 10, 288), (cx + 2, 290)), 3.0, 255)
    _paint(pen.image, pal.skin_line, nose.soft(1.2), 0.8)
    tip = pen.mask()
    tip.ellipse(cx + 3, 281, 5, 3.5, 255)
    _paint(pen.image, (255, 236, 222), tip.soft(2), 0.8)
    return face_mask.image


def _bangs(pen: _Pen, pal: Palette, face_mask: Image.Image) -> None:
    cx, cy = _HEAD_CENTER
    top = _ellipse_pts(cx, cy - 18, 140, 150, math.pi, 2 * math.pi)
    lower = (
        _bezier((cx + 140, cy - 18), (cx + 118, cy - 36), (cx + 104, cy - 70), (cx + 60, cy - 92))
        + _bezier((cx + 60, cy - 92), (cx + 30, cy - 76), (cx - 10, cy - 62), (cx - 40, cy - 88))
        + _bezier((cx - 40, cy - 88), (cx - 70, cy - 56), (cx - 110, cy - 30), (cx - 140, cy - 18))
    )
    shape = top + lower
    # the shadow the fringe casts on the forehead
    shadow = pen.mask()
    shadow.polygon([(x, y + 9) for x, y in shape], 255)
    soft = shadow.soft(6)
    clipped = Image.fromarray(
        (np.asarray(soft, np.float32) * np.asarray(face_mask, np.float32) / 255).astype(np.uint8)
    )
    _paint(pen.image, pal.skin_shade, clipped, 0.8)
    pen.polygon(shape, pal.hair)
    shine = pen.mask()
    shine.stroke(
        _ellipse_pts(cx + 6, cy - 18, 118, 128, math.pi * 1.18, math.pi * 1.55),
        _taper(40, 1, 9),
        255,
    )
    shine.stroke(
        _ellipse_pts(cx - 6, cy - 18, 118, 128, math.pi * 1.62, math.pi * 1.8),
        _taper(20, 1, 6),
        255,
    )
    _paint(pen.image, pal.hair_light, shine.soft(2.5))
    strands = pen.mask()
    strands.stroke(
        _bezier((cx - 40, cy - 88), (cx - 30, cy - 120), (cx - 10, cy - 140), (cx + 30, cy - 150)),
        _taper(32, 0.5, 2.4),
        255,
    )
    strands.stroke(
        _bezier((cx + 60, cy - 92), (cx + 80, cy - 116), (cx + 92, cy - 128), (cx + 100, cy - 126)),
        _taper(32, 0.5, 2.0),
        255,
    )
    _paint(pen.image, (34, 20, 36), strands.image, 0.8)
    # a star clip in the fringe
    sx, sy = cx + 86, cy - 84
    star = [
        (
            sx + (13.0 if k % 2 == 0 else 5.6) * math.cos(-math.pi / 2 + k * math.pi / 5 + 0.2),
            sy + (13.0 if k % 2 == 0 else 5.6) * math.sin(-math.pi / 2 + k * math.pi / 5 + 0.2),
        )
        for k in range(10)
    ]
    pen.polygon([(sx + (x - sx) * 1.22, sy + (y - sy) * 1.22) for x, y in star], pal.clip_dark)
    pen.polygon(star, pal.shirt_trim)
    pen.ellipse(sx - 2.5, sy - 3, 2.6, 2.2, (255, 244, 214))


# -- features (each drawn onto a crop of the finished head) ----------------------------------


def _eye_arcs(ex: float, closure: float) -> tuple[list[Point], list[Point], list[Point]]:
    """Upper lid edge at this closure, the open upper arc and the lower arc of one eye."""
    y = _EYE_Y
    inner, outer = (ex - 27, y + 3), (ex + 27, y + 1)
    if ex < _HEAD_CENTER[0]:
        inner, outer = (ex + 27, y + 3), (ex - 27, y + 1)
    left, right = (inner, outer) if inner[0] < outer[0] else (outer, inner)
    upper = _bezier(left, (left[0] + 10, y - 27), (right[0] - 10, y - 27), right)
    lower = _bezier(left, (left[0] + 12, y + 19), (right[0] - 12, y + 19), right)
    lid = [(ux, uy + (ly - uy) * closure) for (ux, uy), (_, ly) in zip(upper, lower, strict=True)]
    return lid, upper, lower


def _draw_eye(pen: _Pen, pal: Palette, ex: float, closure: float, gaze: float) -> None:
    side = 1 if ex > _HEAD_CENTER[0] else -1
    lid, upper, lower = _eye_arcs(ex, closure)
    white = pen.mask()
    white.polygon(upper + lower[::-1], 255)
    wmask = white.image
    if closure < 0.97:
        _paint(pen.image, pal.eye_white, wmask)
        # the lid's shadow across the top of the eye
        top_shadow = pen.mask()
        top_shadow.stroke(upper, 9.0, 255)
        soft = top_shadow.soft(3)
        _paint(pen.image, pal.eye_shadow, _clip(soft, wmask), 0.9)
        ix, iy = ex + gaze * 9.0, _EYE_Y - 1.0
        for colour, radius, dx, dy in (
            (pal.iris, 17.0, 0.0, 0.0),
            (pal.iris_light, 11.0, 0.0, 5.0),
            (pal.pupil, 8.0, 0.0, 0.0),
        ):
            disc = pen.mask()
            disc.ellipse(ix + dx, iy + dy, radius, radius, 255)
            mask = disc.image if colour != pal.iris_light else disc.soft(4)
            _paint(pen.image, colour, _clip(mask, wmask))
        rim = pen.mask()
        rim.ellipse(ix, iy, 17.0, 17.0, 255)
        rim.ellipse(ix, iy, 15.0, 15.0, 0)
        _paint(pen.image, pal.pupil, _clip(rim.image, wmask), 0.45)
        sparkle = pen.mask()
        sparkle.ellipse(ix + 6, iy - 6, 5.0, 5.0, 255)
        sparkle.ellipse(ix - 5, iy + 6, 2.4, 2.4, 255)
        _paint(pen.image, (255, 255, 255), _clip(sparkle.image, wmask))
        # the upper lid, lowered to `closure`
        if closure > 0.02:
            cover = pen.mask()
            cover.polygon(upper + lid[::-1], 255)
            _paint(pen.image, pal.skin, cover.image)
            crease = pen.mask()
            crease.stroke(lid, 3.0, 255)
            _paint(pen.image, pal.skin_shade, crease.soft(2))
        # a faint lower lash line
        lower_line = pen.mask()
        lower_line.stroke(lower[6:-4], _taper(len(lower[6:-4]), 0.4, 1.6, 0.6), 255)
        _paint(pen.image, pal.skin_line, lower_line.image, 0.7)
    else:
        # shut: the lash line curves down, a happy closed eye
        lid = _bezier(
            lid[0], (lid[0][0] + 12, _EYE_Y + 10), (lid[-1][0] - 12, _EYE_Y + 10), lid[-1]
        )
    # crease above the eye
    crease_line = [(x, y - 9 - 3 * (1 - closure)) for x, y in upper[5:-5]]
    crease = pen.mask()
    crease.stroke(crease_line, _taper(len(crease_line), 0.3, 1.6), 255)
    _paint(pen.image, pal.skin_line, crease.image, 0.3)
    # the lash line along the lid, thicker at the outer corner, and a flick of lashes
    widths = _taper(len(lid), 1.2, 5.0, 0.75 if side > 0 else 0.25)
    pen.stroke(lid, widths, pal.lash)
    corner = lid[-1] if side > 0 else lid[0]
    for k, (dx, dy) in enumerate(((8, -6), (6, -10))):
        base = lid[-3 - 2 * k] if side > 0 else lid[2 + 2 * k]
        tip = (corner[0] + side * dx, corner[1] + dy + (4 if closure >= 0.97 else 0))
        pen.stroke(
            [base, ((base[0] + tip[0]) / 2, (base[1] + tip[1]) / 2 - 1), tip],
            [2.6, 1.8, 0.5],
            pal.lash,
        )


def _draw_brow(pen: _Pen, pal: Palette, raise_: float) -> None:
    cx = _HEAD_CENTER[0]
    lift = 7.0 * raise_
    for side in (-1, 1):
        x0, x1 = cx + side * 22, cx + side * 74
        y0, y1 = _BROW_Y + 4 - lift * 0.7, _BROW_Y + 2 - lift
        arc = _bezier(
            (x0, y0),
            (x0 + side * 16, y0 - 12 - lift * 0.3),
            (x1 - side * 18, y1 - 12),
            (x1, y1 + 6),
        )
        pen.stroke(arc, _taper(len(arc), 2.0, 7.0, 0.35), pal.hair)


def _mouth_outline(shape: MouthShape) -> tuple[list[Point], list[Point], Point]:
    """Upper and lower inner-lip edges (left to right) and the mouth centre for an open shape."""
    cx, cy = _HEAD_CENTER[0], _MOUTH_Y
    o = shape.level / MOUTH_LEVELS
    if shape.viseme is Viseme.ROUND:
        w, h = 40.0 - 8.0 * o, 9.0 + 18.0 * o
        upper_k, lower_k, corner_round = 0.55, 0.85, 0.42
    elif shape.viseme is Viseme.WIDE:
        w, h = 62.0 + 12.0 * o, 5.0 + 14.0 * o
        upper_k, lower_k, corner_round = 0.40, 0.95, 0.12
    else:
        w, h = 50.0 + 10.0 * o, 6.0 + 22.0 * o
        upper_k, lower_k, corner_round = 0.42, 0.95, 0.25
    top, bottom = cy - h * upper_k, cy + h * lower_k
    left, right = (cx - w / 2, cy), (cx + w / 2, cy)
    r = corner_round * w
    upper = _bezier(left, (left[0] + r * 0.4, top), (right[0] - r * 0.4, top), right)
    # a slight cupid's bow on the upper edge
    upper = [(x, y + 2.0 * math.exp(-(((x - cx) / 6.0) ** 2))) for x, y in upper]
    lower = _bezier(left, (left[0] + r * 0.3, bottom), (right[0] - r * 0.3, bottom), right)
    return upper, lower, (cx, cy)


def _draw_mouth(pen: _Pen, pal: Palette, shape: MouthShape) -> None:
    cx, cy = _HEAD_CENTER[0], _MOUTH_Y
    if shape.closed:
        # a soft closed smile, the lower lip a hint of colour beneath it
        smile = _bezier((cx - 30, cy - 3), (cx - 14, cy + 9), (cx + 14, cy + 9), (cx + 30, cy - 3))
        lip = pen.mask()
        lip.ellipse(cx, cy + 9, 15, 5.5, 255)
        _paint(pen.image, pal.lips, lip.soft(2.5), 0.55)
        pen.stroke(smile, _taper(len(smile), 1.6, 4.2), pal.lips_dark)
        for end, d in ((smile[0], -1), (smile[-1], 1)):  # dimples at the corners
            pen.stroke(
                [(end[0] - d * 1, end[1] + 1), (end[0] + d * 3, end[1] - 3)],
                [2.0, 1.0],
                pal.lips_dark,
            )
        return
    upper, lower, _ = _mouth_outline(shape)
    inside = pen.mask()
    inside.polygon(upper + lower[::-1], 255)
    imask = inside.image
    # lips: the opening grown outward, lower lip fuller
    lips = [(x, y - 3.0) for x, y in upper] + [(x, y + 5.0) for x, y in lower[::-1]]
    lips = [(cx + (x - cx) * 1.08, y) for x, y in lips]
    pen.polygon(lips, pal.lips)
    _paint(pen.image, pal.mouth_inside, imask)
    o = shape.level / MOUTH_LEVELS
    top_y = min(y for _, y in upper)
    bottom_y = max(y for _, y in lower)
    height = bottom_y - top_y
    # upper teeth
    teeth = pen.mask()
    teeth_h = max(3.0, height * (0.34 if shape.viseme is Viseme.WIDE else 0.24))
    teeth.polygon(
        [
            (cx - 40, top_y - 4),
            (cx + 40, top_y - 4),
            (cx + 40, top_y + teeth_h),
            (cx - 40, top_y + teeth_h),
        ],
        255,
    )
    _paint(pen.image, pal.teeth, _clip(teeth.image, imask))
    if shape.viseme is Viseme.WIDE and height > 10:
        low_teeth = pen.mask()
        low_teeth.polygon(
            [
                (cx - 40, bottom_y - height * 0.22),
                (cx + 40, bottom_y - height * 0.22),
                (cx + 40, bottom_y + 4),
                (cx - 40, bottom_y + 4),
            ],
            255,
        )
        _paint(pen.image, pal.teeth, _clip(low_teeth.image, imask), 0.9)
    # tongue, once the mouth is open enough to see it
    if o >= 0.4 and shape.viseme is not Viseme.WIDE:
        tongue = pen.mask()
        tongue.ellipse(
            cx, bottom_y + height * 0.05, (lower[-1][0] - lower[0][0]) * 0.32, height * 0.36, 255
        )
        _paint(pen.image, pal.tongue, _clip(tongue.image, imask))
    # lip shading and shine
    line = pen.mask()
    line.stroke(upper, 1.8, 255)
    _paint(pen.image, pal.lips_dark, line.image, 0.8)
    shine = pen.mask()
    shine.ellipse(cx + 4, bottom_y + 2.5, 9, 1.8, 255)
    _paint(pen.image, (255, 190, 196), shine.soft(1.2), 0.7)


def _clip(mask: Image.Image, clip: Image.Image) -> Image.Image:
    a = np.asarray(mask, np.uint16) * np.asarray(clip, np.uint16) // 255
    return Image.fromarray(a.astype(np.uint8))


# --------------------------------------------------------------------------------------------
# the renderer


@dataclass(frozen=True)
class _Box:
    """A rectangle in design units (x0, y0, x1, y1)."""

    x0: float
    y0: float
    x1: float
    y1: float


_EYES_BOX = _Box(_HEAD_CENTER[0] - 90, _EYE_Y - 28, _HEAD_CENTER[0] + 90, _EYE_Y + 24)
_BROWS_BOX = _Box(_HEAD_CENTER[0] - 86, _BROW_Y - 20, _HEAD_CENTER[0] + 86, _EYE_Y - 28)
_MOUTH_BOX = _Box(_HEAD_CENTER[0] - 44, _MOUTH_Y - 22, _HEAD_CENTER[0] + 44, _MOUTH_Y + 34)
_HEAD_BOX = _Box(_HEAD_CENTER[0] - 150, 56, _HEAD_CENTER[0] + 150, 400)


@dataclass
class _Region:
    """Pixel rectangle (rows y0:y1, cols x0:x1) at zero head offset."""

    y0: int
    x0: int
    y1: int
    x1: int
    patches: dict[object, np.ndarray] = field(default_factory=dict)


class FaceRenderer:
    """Draws the host at `width` x `height`; `render(state)` returns an RGBA frame.

    Building one takes a few hundred milliseconds (everything is drawn up front); keep it for
    the life of the avatar.
    """

    def __init__(
        self,
        width: int = 512,
        height: int = 512,
        palette: Palette = DEFAULT_PALETTE,
        supersample: int = 4,
    ) -> None:
        if width < 64 or height < 64:
            raise ValueError(f"the avatar needs at least 64x64 pixels, got {width}x{height}")
        self.width, self.height, self.palette = width, height, palette
        self.scale = min(width, height) / DESIGN  # frame pixels per design unit
        # the 512 square centred horizontally, standing on the bottom edge
        self.origin_x = (width - DESIGN * self.scale) / 2
        self.origin_y = height - DESIGN * self.scale
        self._ss = max(2, supersample)
        self._build()

    # -- public geometry (frame pixels, at zero head offset) --

    def to_px(self, x: float, y: float) -> tuple[int, int]:
        """A design point in frame pixels (column, row)."""
        return round(self.origin_x + x * self.scale), round(self.origin_y + y * self.scale)

    def mouth_box(self, state: FaceState | None = None) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the mouth patch in frame pixels for `state`'s head offset."""
        return self._box(self._mouth, state)

    def eyes_box(self, state: FaceState | None = None) -> tuple[int, int, int, int]:
        return self._box(self._eyes, state)

    def _box(self, region: _Region, state: FaceState | None) -> tuple[int, int, int, int]:
        dx, dy = self._head_offset(state or FaceState())
        return region.x0 + dx, region.y0 + dy, region.x1 + dx, region.y1 + dy

    # -- drawing --

    def render(self, state: FaceState, out: np.ndarray | None = None) -> np.ndarray:
        """The frame for `state` as (height, width, 4) uint8 RGBA (alpha 255 everywhere).

        `out`, when given, must be a C-contiguous (height, width, 4) uint8 array and is filled
        in place (e.g. a view of the buffer a video frame will own).
        """
        h, w = self.height, self.width
        if out is None:
            out = np.empty((h, w, 4), dtype=np.uint8)
        elif out.shape != (h, w, 4) or out.dtype != np.uint8:
            raise ValueError(f"out must be ({h}, {w}, 4) uint8, got {out.shape} {out.dtype}")
        # body (and the background around it), raised by breathing
        lift = int(round(_clamp(state.breath, 0.0, 1.0) * self._breath_px))
        out[...] = self._body[lift : lift + h]
        # head
        dx, dy = self._head_offset(state)
        hy, hx = self._head_y + dy, self._head_x + dx
        split = self._head_split
        hh, hw = self._head_on_bg.shape[:2]
        out[hy : hy + split, hx : hx + hw, :3] = self._head_on_bg[:split]
        below = out[hy + split : hy + hh, hx : hx + hw, :3]
        blended = below.astype(np.uint16)
        blended *= self._head_inv_alpha[split:]
        blended += self._head_premul[split:]
        blended += 128
        blended += blended >> 8
        below[...] = blended >> 8
        # features
        eyelid = _nearest(EYELID_STEPS, state.eyelid)
        gaze = _nearest(GAZE_STEPS, state.gaze)
        brow = _nearest(BROW_STEPS, state.brow)
        mouth = REST_MOUTH if state.mouth.closed else state.mouth
        for region, key in (
            (self._eyes, (eyelid, gaze)),
            (self._brows, brow),
            (self._mouth, mouth),
        ):
            patch = region.patches[key]
            out[region.y0 + dy : region.y1 + dy, region.x0 + dx : region.x1 + dx, :3] = patch
        return out

    def _head_offset(self, state: FaceState) -> tuple[int, int]:
        m = self._motion_px
        return (
            int(round(_clamp(state.head_dx * self.scale, -m, m))),
            int(round(_clamp(state.head_dy * self.scale, -m, m))),
        )

    # -- building --

    def _build(self) -> None:
        pal, s, ss = self.palette, self.scale, self._ss
        w, h = self.width, self.height
        self._motion_px = int(math.floor(_HEAD_MOTION_MARGIN * s))
        self._breath_px = max(1, int(math.ceil(_BREATH_MARGIN * s)))
        bg = np.array(pal.background, dtype=np.uint8)

        # body: a frame-wide strip `breath_px` taller than the frame (below its bottom edge),
        # so raising it never uncovers the bottom
        body_h = h + self._breath_px
        img = Image.new("RGBA", (w * ss, body_h * ss), (0, 0, 0, 0))
        origin = (-self.origin_x / s, -self.origin_y / s)
        _draw_body(_Pen(img, s * ss, origin, ss), pal)
        body = _reduce_rgba(img, ss)
        self._body = np.empty((body_h, w, 4), dtype=np.uint8)
        self._body[..., :3] = _over(body, bg)
        self._body[..., 3] = 255

        # head: cut to whole pixels so that the supersampled crop lines up with frame pixels
        x0, y0 = self.to_px(_HEAD_BOX.x0, _HEAD_BOX.y0)
        x1, y1 = self.to_px(_HEAD_BOX.x1, _HEAD_BOX.y1)
        x0, y0 = max(x0, self._motion_px), max(y0, self._motion_px)
        x1 = min(x1, w - self._motion_px)
        y1 = min(y1, h - self._motion_px)
        self._head_x, self._head_y = x0, y0
        head_origin = ((x0 - self.origin_x) / s, (y0 - self.origin_y) / s)
        head_img = Image.new("RGBA", ((x1 - x0) * ss, (y1 - y0) * ss), (0, 0, 0, 0))
        pen = _Pen(head_img, s * ss, head_origin, ss)
        _hair_back(pen, pal)
        face_mask = _face(pen, pal)
        _bangs(pen, pal, face_mask)
        head = _reduce_rgba(head_img, ss)
        alpha = head[..., 3:4].astype(np.uint16)
        self._head_premul = head[..., :3].astype(np.uint16) * alpha
        self._head_inv_alpha = 255 - alpha
        self._head_on_bg = _over(head, bg)
        # rows of the head that can never overlap the body are copied opaque
        body_rows = np.nonzero(body[..., 3].max(axis=1) > 0)[0]
        body_top = int(body_rows[0]) - self._breath_px  # first body row in frame, fully raised
        self._head_split = int(_clamp(body_top - self._motion_px - y0, 0, head.shape[0]))

        # feature patches, each drawn on a crop of the supersampled head
        self._eyes = self._region(_EYES_BOX)
        self._brows = self._region(_BROWS_BOX)
        self._mouth = self._region(_MOUTH_BOX)
        for closure in EYELID_STEPS:
            for gaze in GAZE_STEPS:
                self._eyes.patches[(closure, gaze)] = self._patch(
                    head_img,
                    head_origin,
                    self._eyes,
                    functools.partial(self._eyes_fn, closure=closure, gaze=gaze),
                )
        for raise_ in BROW_STEPS:
            self._brows.patches[raise_] = self._patch(
                head_img,
                head_origin,
                self._brows,
                functools.partial(_draw_brow, pal=pal, raise_=raise_),
            )
        shapes = [REST_MOUTH] + [
            MouthShape(v, level)
            for v in (Viseme.OPEN, Viseme.ROUND, Viseme.WIDE)
            for level in range(1, MOUTH_LEVELS + 1)
        ]
        for shape in shapes:
            self._mouth.patches[shape] = self._patch(
                head_img,
                head_origin,
                self._mouth,
                functools.partial(_draw_mouth, pal=pal, shape=shape),
            )

    def _eyes_fn(self, pen: _Pen, closure: float, gaze: float) -> None:
        for side in (-1, 1):
            _draw_eye(pen, self.palette, _HEAD_CENTER[0] + side * _EYE_DX, closure, gaze)

    def _region(self, box: _Box) -> _Region:
        x0, y0 = self.to_px(box.x0, box.y0)
        x1, y1 = self.to_px(box.x1, box.y1)
        return _Region(y0=y0, x0=x0, y1=y1, x1=x1)

    def _patch(
        self,
        head_img: Image.Image,
        head_origin: Point,
        region: _Region,
        draw: Callable[[_Pen], None],
    ) -> np.ndarray:
        ss, s = self._ss, self.scale
        left, top = region.x0 - self._head_x, region.y0 - self._head_y
        crop = head_img.crop(
            (
                left * ss,
                top * ss,
                (left + region.x1 - region.x0) * ss,
                (top + region.y1 - region.y0) * ss,
            )
        )
        origin = (head_origin[0] + left / s, head_origin[1] + top / s)
        draw(_Pen(crop, s * ss, origin, ss))
        patch = _reduce_rgba(crop, ss)
        if patch[..., 3].min() < 255:
            raise AssertionError("a feature patch must lie wholly on the opaque head")
        rgb: np.ndarray = np.ascontiguousarray(patch[..., :3])
        return rgb


def _over(rgba: np.ndarray, bg: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out: np.ndarray = (rgba[..., :3] * a + bg * (1 - a)).round().astype(np.uint8)
    return out


def _nearest(steps: Sequence[float], value: float) -> float:
    return min(steps, key=lambda s: abs(s - value))


def _clamp(value: float, lo: float, hi: float) -> float:
    return lo if value < lo else hi if value > hi else value
