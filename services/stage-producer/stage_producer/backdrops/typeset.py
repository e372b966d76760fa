"""Setting a backdrop's title: a kicker, an accent bar and a bold title that fits, top left.

Top left because the host stands in the middle of the stage and captions sit at the bottom.
Shared by every backdrop maker so generated and drawn pictures read the same way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font(size: int, bold: bool = True) -> Font:
    """DejaVu Sans (Debian's fonts-dejavu) when present, else Pillow's built-in scalable font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in _FONT_DIRS:
        path = folder / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def _width(draw: ImageDraw.ImageDraw, text: str, face: Font) -> float:
    return float(draw.textlength(text, font=face))


def wrap(draw: ImageDraw.ImageDraw, text: str, face: Font, max_width: float) -> list[str]:
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        trial = f"{current} {word}".strip()
        if not current or _width(draw, trial, face) <= max_width:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def fit_title(
    draw: ImageDraw.ImageDraw,
    title: str,
    max_width: float,
    start: int,
    minimum: int,
    max_lines: int = 3,
) -> tuple[Font, list[str]]:
    """The largest font size (from `start` down) at which `title` fits in `max_lines` lines."""
    size = start
    while True:
        face = font(size)
        lines = wrap(draw, title, face, max_width)
        if (
            len(lines) <= max_lines and all(_width(draw, line, face) <= max_width for line in lines)
        ) or size <= minimum:
            if len(lines) > max_lines:  # still too long at the smallest size: ellipsize
                lines = lines[:max_lines]
                while lines[-1] and _width(draw, lines[-1] + "…", face) > max_width:
                    lines[-1] = lines[-1][:-1]
                lines[-1] = lines[-1].rstrip() + "…"
            return face, lines
        size = max(minimum, int(size * 0.9))


def set_title(
    image: Image.Image, title: str, kicker: str, accent: tuple[int, int, int]
) -> Image.Image:
    """Draw `kicker` and `title` over `image` (RGB), with a soft shadow for legibility."""
    width, height = image.size
    unit = height / 720
    margin_x, margin_y = round(64 * unit), round(56 * unit)
    max_width = width * 0.52
    measure = ImageDraw.Draw(image)
    title_face, lines = fit_title(
        measure, title.strip() or "Livestage", max_width, round(64 * unit), round(30 * unit)
    )
    kicker_face = font(round(18 * unit))
    line_height = (
        round(title_face.size * 1.12) if isinstance(title_face, ImageFont.FreeTypeFont) else 40
    )

    kicker_text = " ".join(kicker.upper())  # letter-spaced
    y_kicker = margin_y
    y_bar = y_kicker + round(30 * unit)
    y_title = y_bar + round(22 * unit)
    block_bottom = y_title + line_height * len(lines)

    shadow = Image.new("L", image.size, 0)
    shade = ImageDraw.Draw(shadow)
    shade.text((margin_x, y_kicker), kicker_text, font=kicker_face, fill=200)
    for index, line in enumerate(lines):
        shade.text((margin_x, y_title + index * line_height), line, font=title_face, fill=230)
    shadow = shadow.filter(ImageFilter.GaussianBlur(round(10 * unit)))
    dark = Image.new("RGB", image.size, (0, 0, 0))
    image = Image.composite(dark, image, shadow.point(lambda v: int(v * 0.85)))

    draw = ImageDraw.Draw(image)
    draw.text((margin_x, y_kicker), kicker_text, font=kicker_face, fill=accent)
    draw.rounded_rectangle(
        (margin_x, y_bar, margin_x + round(72 * unit), y_bar + max(3, round(6 * unit))),
        radius=max(1, round(3 * unit)),
        fill=accent,
    )
    for index, line in enumerate(lines):
        draw.text(
            (margin_x, y_title + index * line_height), line, font=title_face, fill=(255, 255, 255)
        )
    assert block_bottom < height
    return image
