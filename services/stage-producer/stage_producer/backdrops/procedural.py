"""A drawn backdrop (Pillow + numpy, offline): palette and shapes from the topic, title set well.

The topic's words pick a theme (space, ocean, nature, fire, tech, music, food, city, aurora) that
fixes the hues and the kind of shapes; anything else gets hues and shapes from a hash of the
topic, so the same topic always looks the same and different topics look different. Layers: a
dark diagonal gradient, soft glows (drawn small, blurred, scaled up), the theme's shapes (drawn
at twice the size and scaled down for smooth edges), a vignette, a little grain, the title.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import math
import random
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .base import Backdrop, BackdropMaker, BackdropRequest
from .typeset import set_title

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Theme:
    name: str
    words: tuple[str, ...]
    hues: tuple[float, float, float]  # degrees: base, second, accent
    shapes: str


THEMES: tuple[Theme, ...] = (
    Theme(
        "aurora",
        ("aurora", "northern", "polar", "arctic", "snow", "winter", "ice"),
        (150, 190, 285),
        "ribbons",
    ),
    Theme(
        "space",
        (
            "space",
            "star",
            "stars",
            "galaxy",
            "planet",
            "moon",
            "rocket",
            "cosmos",
            "astronomy",
            "orbit",
            "nebula",
            "mars",
            "telescope",
            "universe",
        ),
        (250, 290, 195),
        "stars",
    ),
    Theme(
        "ocean",
        (
            "ocean",
            "sea",
            "water",
            "beach",
            "wave",
            "waves",
            "surf",
            "fish",
            "whale",
            "coral",
            "river",
            "lake",
            "rain",
            "boat",
            "sailing",
            "tide",
        ),
        (198, 172, 35),
        "waves",
    ),
    Theme(
        "nature",
        (
            "forest",
            "tree",
            "trees",
            "nature",
            "mountain",
            "mountains",
            "hike",
            "hiking",
            "garden",
            "plant",
            "flower",
            "park",
            "wildlife",
            "animal",
            "bird",
            "birds",
            "leaf",
            "camping",
        ),
        (145, 95, 40),
        "mountains",
    ),
    Theme(
        "fire",
        (
            "fire",
            "volcano",
            "sun",
            "summer",
            "desert",
            "heat",
            "lava",
            "sunset",
            "sunrise",
            "spicy",
        ),
        (18, 38, 345),
        "rays",
    ),
    Theme(
        "tech",
        (
            "tech",
            "technology",
            "code",
            "coding",
            "computer",
            "computers",
            "ai",
            "robot",
            "robots",
            "software",
            "programming",
            "python",
            "internet",
            "data",
            "chip",
            "gaming",
            "game",
            "games",
            "cyber",
            "web",
        ),
        (190, 265, 315),
        "grid",
    ),
    Theme(
        "music",
        (
            "music",
            "song",
            "songs",
            "band",
            "concert",
            "guitar",
            "piano",
            "dance",
            "dj",
            "beat",
            "singing",
            "album",
            "jazz",
            "synth",
        ),
        (318, 275, 40),
        "bars",
    ),
    Theme(
        "food",
        (
            "food",
            "cook",
            "cooking",
            "recipe",
            "pizza",
            "coffee",
            "tea",
            "cake",
            "bread",
            "kitchen",
            "chef",
            "baking",
            "dinner",
        ),
        (28, 8, 48),
        "bokeh",
    ),
    Theme(
        "city",
        (
            "city",
            "cities",
            "travel",
            "street",
            "building",
            "buildings",
            "architecture",
            "train",
            "trains",
            "urban",
            "bridge",
            "skyline",
        ),
        (232, 325, 45),
        "skyline",
    ),
)
_SHAPES = ("ribbons", "stars", "waves", "mountains", "rays", "grid", "bars", "bokeh", "skyline")


def theme_for(topic: str, keywords: tuple[str, ...] = ()) -> Theme:
    """The theme whose words the topic uses most; else one derived from the topic's hash."""
    words = set(re.findall(r"[a-z0-9]+", (topic + " " + " ".join(keywords)).lower()))
    singular = {w[:-1] for w in words if w.endswith("s")} | {
        w[:-2] for w in words if w.endswith("es")
    }
    words |= singular
    best = max(THEMES, key=lambda theme: len(words & set(theme.words)))
    if words & set(best.words):
        return best
    digest = hashlib.sha256(topic.lower().encode()).digest()
    base = digest[0] / 255 * 360
    return Theme(
        "topic",
        (),
        (base, (base + 40 + digest[1] % 40) % 360, (base + 150 + digest[2] % 60) % 360),
        _SHAPES[digest[3] % len(_SHAPES)],
    )


def hsv(hue_deg: float, saturation: float, value: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360) / 360, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


class ProceduralBackdrops(BackdropMaker):
    name = "procedural"

    async def make(self, request: BackdropRequest) -> Backdrop:
        return await asyncio.to_thread(self.render, request)

    def render(self, request: BackdropRequest) -> Backdrop:
        image, theme = draw_backdrop(request)
        topic = request.topic.strip() or request.title
        return self.finished(
            image,
            request,
            f"A drawn backdrop for the topic “{topic}” ({theme.name} colours and shapes).",
        )


def draw_backdrop(request: BackdropRequest) -> tuple[Image.Image, Theme]:
    width, height = request.width, request.height
    seed_text = (request.prompt or request.topic or request.title).lower()
    rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
    theme = theme_for(f"{request.topic} {request.prompt}", request.keywords)
    h0, h1, h2 = theme.hues

    # 1. a dark diagonal gradient
    top_left = np.array(hsv(h0, 0.70, 0.13), dtype=np.float32)
    bottom_right = np.array(hsv(h1, 0.75, 0.28), dtype=np.float32)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    t = np.clip(0.6 * xs + 0.4 * ys, 0, 1)[..., None]
    canvas = top_left * (1 - t) + bottom_right * t

    # 2. soft glows, drawn small and blurred (cheap and smooth)
    small = (max(8, width // 4), max(8, height // 4))
    glow = Image.new("RGB", small, (0, 0, 0))
    glow_draw = ImageDraw.Draw(glow)
    for index in range(6):
        hue = (h0, h1, h2)[index % 3] + rng.uniform(-12, 12)
        radius = rng.uniform(0.12, 0.30) * small[0]
        cx, cy = rng.uniform(0.05, 0.95) * small[0], rng.uniform(0.05, 0.95) * small[1]
        glow_draw.ellipse(
            (cx - radius, cy - radius * 0.8, cx + radius, cy + radius * 0.8),
            fill=hsv(hue, 0.75, rng.uniform(0.45, 0.8)),
        )
    glow = glow.filter(ImageFilter.GaussianBlur(small[0] / 10)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    canvas = canvas + np.asarray(glow, dtype=np.float32) * 0.55

    base = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")

    # 3. the theme's shapes, at 2x for smooth edges
    layer = Image.new("RGBA", (width * 2, height * 2), (0, 0, 0, 0))
    SHAPE_PAINTERS[theme.shapes](ImageDraw.Draw(layer), layer.size, theme, rng)
    if theme.shapes == "ribbons":
        layer = layer.filter(ImageFilter.GaussianBlur(18))
    layer = layer.resize((width, height), Image.Resampling.LANCZOS)
    base.paste(layer, (0, 0), layer)

    # 4. vignette and grain
    pixels = np.asarray(base, dtype=np.float32)
    dx = (xs - 0.5) / 0.75
    dy = (ys - 0.5) / 0.62
    vignette = np.clip(1.0 - 0.55 * (dx**2 + dy**2), 0.35, 1.0)[..., None]
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 3.0, (height, width, 1))
    pixels = np.clip(pixels * vignette + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")

    # 5. the title
    kicker = theme.name if theme.name != "topic" else "on stage"
    image = set_title(image, request.title, kicker, hsv(h2, 0.55, 1.0))
    return image, theme


# --- shape painters (draw on an RGBA layer of size (w, h)) --------------------------------------


def _stars(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    for _ in range(420):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.choice((1.2, 1.6, 2.2, 2.2, 3.0, 4.5))
        a = rng.randint(90, 255)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, a))
    # a planet with a ring, right of centre
    cx, cy, r = w * rng.uniform(0.68, 0.82), h * rng.uniform(0.32, 0.5), h * 0.2
    for step in range(24):
        k = step / 24
        color = hsv(theme.hues[1] + 20 * k, 0.6, 0.35 + 0.5 * (1 - k))
        inset = r * k * 0.9
        draw.ellipse(
            (
                cx - r + inset * 0.6,
                cy - r + inset * 0.3,
                cx + r - inset * 1.2,
                cy + r - inset * 1.4,
            ),
            fill=(*color, 255),
        )
    ring = hsv(theme.hues[2], 0.35, 0.95)
    draw.arc(
        (cx - r * 1.9, cy - r * 0.45, cx + r * 1.9, cy + r * 0.45),
        200,
        340,
        fill=(*ring, 200),
        width=round(h * 0.008),
    )
    draw.arc(
        (cx - r * 1.9, cy - r * 0.45, cx + r * 1.9, cy + r * 0.45),
        -10,
        170,
        fill=(*ring, 230),
        width=round(h * 0.01),
    )


def _waves(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    for band in range(7):
        k = band / 6
        base_y = h * (0.52 + 0.07 * band)
        amplitude = h * (0.025 + 0.02 * rng.random())
        wavelength = w * rng.uniform(0.35, 0.7)
        phase = rng.uniform(0, math.tau)
        points = [
            (x, base_y + amplitude * math.sin(x / wavelength * math.tau + phase))
            for x in range(0, w + 16, 16)
        ]
        color = hsv(theme.hues[0] + 25 * k, 0.75, 0.5 + 0.45 * k)
        draw.polygon([*points, (w, h), (0, h)], fill=(*color, 95 + round(80 * k)))
        draw.line(points, fill=(*hsv(theme.hues[2], 0.25, 1.0), 110), width=round(h * 0.003))


def _mountains(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    sun = hsv(theme.hues[2], 0.45, 1.0)
    sx, sy, sr = w * rng.uniform(0.6, 0.8), h * 0.38, h * 0.09
    draw.ellipse((sx - sr, sy - sr, sx + sr, sy + sr), fill=(*sun, 200))
    for layer in range(4):
        k = layer / 3
        base_y = h * (0.5 + 0.12 * layer)
        freqs = [rng.uniform(1.2, 2.5), rng.uniform(3, 5), rng.uniform(7, 10)]
        phases = [rng.uniform(0, math.tau) for _ in freqs]
        points = []
        for x in range(0, w + 12, 12):
            u = x / w
            y = base_y - h * 0.12 * (1 - 0.3 * k) * sum(
                math.sin(u * f * math.tau + p) / (i + 1) ** 1.6
                for i, (f, p) in enumerate(zip(freqs, phases, strict=True))
            )
            points.append((x, y))
        color = hsv(theme.hues[0] + 10 * layer, 0.55, 0.18 + 0.08 * (3 - layer))
        draw.polygon([*points, (w, h), (0, h)], fill=(*color, 235))


def _rays(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    cx, cy = w * rng.uniform(0.6, 0.78), h * rng.uniform(0.55, 0.7)
    for ray in range(28):
        angle = ray / 28 * math.tau + rng.uniform(-0.03, 0.03)
        spread = 0.035
        far = w * 1.2
        draw.polygon(
            [
                (cx, cy),
                (cx + far * math.cos(angle - spread), cy + far * math.sin(angle - spread)),
                (cx + far * math.cos(angle + spread), cy + far * math.sin(angle + spread)),
            ],
            fill=(*hsv(theme.hues[1], 0.7, 1.0), 34),
        )
    for ring in range(6, 0, -1):
        r = h * 0.07 * ring
        draw.ellipse(
            (cx - r, cy - r, cx + r, cy + r),
            fill=(*hsv(theme.hues[0] + ring * 4, 0.8, 1.0), 26 + 12 * (6 - ring)),
        )
    r = h * 0.1
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*hsv(theme.hues[2] + 30, 0.35, 1.0), 245))


def _grid(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    horizon = h * 0.58
    line = (*hsv(theme.hues[2], 0.7, 1.0), 150)
    vanish_x = w * 0.62
    for i in range(-18, 19):
        draw.line([(vanish_x, horizon), (vanish_x + i * w * 0.09, h)], fill=line, width=3)
    for j in range(1, 12):
        y = horizon + (h - horizon) * (j / 11) ** 2.2
        draw.line([(0, y), (w, y)], fill=line, width=3)
    node = (*hsv(theme.hues[0], 0.6, 1.0), 200)
    for _ in range(26):  # a few circuit traces in the sky
        x, y = rng.uniform(w * 0.55, w * 0.97), rng.uniform(h * 0.08, horizon - 20)
        length = rng.uniform(60, 260)
        horizontal = rng.random() < 0.5
        end = (x + length, y) if horizontal else (x, min(horizon - 10, y + length))
        draw.line([(x, y), end], fill=(*node[:3], 110), width=3)
        draw.ellipse((end[0] - 7, end[1] - 7, end[0] + 7, end[1] + 7), fill=node)


def _bars(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    count = 42
    gap = w / count
    for i in range(count):
        level = 0.25 + 0.6 * abs(math.sin(i * 0.37 + rng.uniform(0, 0.8))) * rng.uniform(0.6, 1.0)
        top = h * (1 - level * 0.55)
        color = hsv(theme.hues[0] + (theme.hues[1] - theme.hues[0]) * i / count, 0.7, 0.95)
        draw.rounded_rectangle(
            (i * gap + gap * 0.18, top, (i + 1) * gap - gap * 0.18, h + 20),
            radius=gap * 0.3,
            fill=(*color, 150),
        )


def _bokeh(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    for _ in range(38):
        r = rng.uniform(0.02, 0.09) * h
        x, y = rng.uniform(0.35, 1.0) * w, rng.uniform(0, 1) * h
        color = hsv(rng.choice(theme.hues) + rng.uniform(-10, 10), 0.55, 1.0)
        draw.ellipse(
            (x - r, y - r, x + r, y + r),
            fill=(*color, rng.randint(35, 90)),
            outline=(*color, 140),
            width=3,
        )


def _skyline(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    for row, (depth, alpha) in enumerate(((0.42, 170), (0.3, 235))):
        x = -rng.uniform(0, 40)
        color = hsv(theme.hues[0], 0.5, 0.12 + 0.06 * (1 - row))
        window = hsv(theme.hues[2], 0.45, 1.0)
        while x < w:
            bw = rng.uniform(0.035, 0.08) * w
            bh = rng.uniform(0.35, 1.0) * depth * h
            top = h - bh
            draw.rectangle((x, top, x + bw, h), fill=(*color, alpha))
            if row == 1:
                for wy in range(int(top + 18), h - 10, 26):
                    for wx in range(int(x + 10), int(x + bw - 10), 20):
                        if rng.random() < 0.35:
                            draw.rectangle(
                                (wx, wy, wx + 8, wy + 12), fill=(*window, rng.randint(120, 230))
                            )
            x += bw + rng.uniform(2, 14)


def _ribbons(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], theme: Theme, rng: random.Random
) -> None:
    w, h = size
    for ribbon in range(4):
        hue = theme.hues[ribbon % 2] + rng.uniform(-8, 8)
        base_y = h * rng.uniform(0.22, 0.5)
        amplitude = h * rng.uniform(0.05, 0.12)
        frequency = rng.uniform(0.8, 1.8)
        phase = rng.uniform(0, math.tau)
        for x in range(0, w, 6):
            y = base_y + amplitude * math.sin(x / w * frequency * math.tau + phase)
            length = h * (0.18 + 0.12 * (0.5 + 0.5 * math.sin(x / w * 7 + phase)))
            for k in range(6):
                part = k / 6
                draw.line(
                    [(x, y + length * part), (x, y + length * (part + 1 / 6))],
                    fill=(*hsv(hue + 40 * part, 0.8, 1.0), round(110 * (1 - part))),
                    width=7,
                )


SHAPE_PAINTERS = {
    "stars": _stars,
    "waves": _waves,
    "mountains": _mountains,
    "rays": _rays,
    "grid": _grid,
    "bars": _bars,
    "bokeh": _bokeh,
    "skyline": _skyline,
    "ribbons": _ribbons,
}
