"""Drawn backdrops: the right size, not blank, the same for the same topic, different for
different topics, themed by the topic's words, and a long title still fits."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from stage_producer.backdrops.base import BackdropRequest
from stage_producer.backdrops.procedural import ProceduralBackdrops, theme_for
from stage_producer.backdrops.typeset import fit_title, font

MAKER = ProceduralBackdrops()


def render(topic: str, title: str) -> Image.Image:
    made = MAKER.render(BackdropRequest(topic=topic, title=title))
    assert made.mime == "image/jpeg" and made.data[:3] == b"\xff\xd8\xff"
    return Image.open(io.BytesIO(made.data)).convert("RGB")


@pytest.mark.parametrize(
    ("topic", "theme"),
    [
        ("Northern lights over the arctic", "aurora"),
        ("Mars rovers", "space"),
        ("Whales and waves", "ocean"),
        ("Hiking in the mountains", "nature"),
        ("Volcanoes at night", "fire"),
        ("Python programming", "tech"),
        ("Synth music", "music"),
        ("Coffee and cake", "food"),
        ("Trains across the city", "city"),
        ("Quantum knitting", "topic"),
    ],
)
def test_topics_pick_a_theme(topic: str, theme: str) -> None:
    assert theme_for(topic).name == theme


def test_backdrops_are_stage_sized_and_not_blank(tmp_path: Path) -> None:
    sheet = Image.new("RGB", (1280, 720))
    for index, topic in enumerate(["Aurora", "Space", "Ocean", "Coding"]):
        image = render(topic, f"All about {topic}")
        assert image.size == (1280, 720)
        assert max(ImageStat.Stat(image).stddev) > 15
        sheet.paste(image.resize((640, 360)), ((index % 2) * 640, (index // 2) * 360))
    sheet.save(tmp_path / "backdrops.png")


def test_the_same_topic_looks_the_same_and_another_looks_different() -> None:
    a = render("Deep sea", "Life in the deep sea")
    b = render("Deep sea", "Life in the deep sea")
    c = render("Synthesizers", "Life in the deep sea")
    assert ImageChops.difference(a, b).getbbox() is None
    assert max(ImageStat.Stat(ImageChops.difference(a, c)).mean) > 10


def test_the_title_is_set_in_the_top_left_in_white() -> None:
    image = render("Mars", "MMMMMMMM")
    corner = image.crop((40, 80, 500, 200))
    bright = sum(1 for p in corner.getdata() if min(p) > 235)
    assert bright > 500, "expected white title lettering in the top-left"


def test_a_long_title_is_shrunk_then_ellipsized_to_fit() -> None:
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    title = "An extraordinarily long title " * 8
    face, lines = fit_title(draw, title, 600, 64, 30)
    assert len(lines) <= 3 and lines[-1].endswith("…")
    assert all(draw.textlength(line, font=face) <= 600 for line in lines)
    short_face, short = fit_title(draw, "Mars", 600, 64, 30)
    assert short == ["Mars"] and short_face.size == font(64).size  # type: ignore[union-attr]
