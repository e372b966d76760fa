"""Subject names refuse unsafe rooms; the text sanitizer leaves only visible, tidy text."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from livestage import subjects
from livestage.text import (
    BLANK_CHARACTERS,
    INVISIBLE_MARKS,
    MAX_MARKS_PER_BASE,
    clean_text,
    is_clean,
)

BUILDERS = [
    subjects.chat_submitted,
    subjects.chat_approved,
    subjects.chat_rejected,
    subjects.host_spoken,
    subjects.host_control,
    subjects.host_worker,
    subjects.stage_visual,
    subjects.room_presence,
    subjects.history_recent,
]


def test_subject_names() -> None:
    assert subjects.chat_submitted("R") == "chat.submitted.R"
    assert subjects.chat_approved("R") == "chat.approved.R"
    assert subjects.chat_rejected("R") == "chat.rejected.R"
    assert subjects.host_spoken("R") == "host.spoken.R"
    assert subjects.host_control("R") == "host.control.R"
    assert subjects.host_worker("livestage-host") == "host.worker.livestage-host"
    assert subjects.stage_visual("R") == "stage.visual.R"
    assert subjects.room_presence("R") == "room.presence.R"
    assert subjects.history_recent("R") == "history.recent.R"
    assert subjects.all_rooms("chat", "approved") == "chat.approved.*"
    assert subjects.room_of("chat.approved.my-room") == "my-room"


@pytest.mark.parametrize("room", ["", "a.b", "*", ">", "a b", "a\tb", "a\r\nPUB x", "é", "x" * 65])
@pytest.mark.parametrize("builder", BUILDERS)
def test_unsafe_room_names_are_refused(builder, room: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(subjects.InvalidRoomName, match="not allowed"):
        builder(room)


@settings(max_examples=300, deadline=None)
@given(room=st.text(max_size=80))
def test_every_built_subject_has_exactly_three_literal_tokens(room: str) -> None:
    try:
        subject = subjects.chat_submitted(room)
    except subjects.InvalidRoomName:
        assert any(c not in string.ascii_letters + string.digits + "_-" for c in room) or not (
            1 <= len(room) <= 64
        )
        return
    tokens = subject.split(".")
    assert tokens == ["chat", "submitted", room]
    assert not set(subject) & set("*> \t\r\n")


HIDDEN = [
    "\u202e",
    "\u202d",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
]


@settings(max_examples=500, deadline=None)
@given(value=st.text(max_size=200))
@example("a\u202eb")
@example("\u0065\u200b\u0301")
@example("\u00a8\u00a8")
@example("x\u3000\u3000y")
def test_clean_text_is_idempotent_and_leaves_nothing_hidden(value: str) -> None:
    cleaned = clean_text(value)
    assert clean_text(cleaned) == cleaned
    assert is_clean(cleaned)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    for char in cleaned:
        assert unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co", "Cn"}, repr(char)
        assert char == " " or not char.isspace()


@settings(max_examples=300, deadline=None)
@given(
    visible=st.text(string.ascii_letters + string.digits, min_size=1, max_size=40),
    hidden=st.lists(st.sampled_from(HIDDEN), min_size=1, max_size=5),
    where=st.integers(0, 40),
)
def test_bidi_zero_width_and_controls_are_removed(
    visible: str, hidden: list[str], where: int
) -> None:
    position = min(where, len(visible))
    dirty = visible[:position] + "".join(hidden) + visible[position:]
    assert clean_text(dirty) == visible


def test_nfkc_and_whitespace() -> None:
    assert clean_text("  Ｆｕｌｌ\u3000width \n\n name\t") == "Full width name"
    assert clean_text("ﬁne") == "fine"


# Characters that draw nothing: blanks, invisible marks, whitespace, format characters.
NOTHING = sorted(BLANK_CHARACTERS | INVISIBLE_MARKS) + [" ", "\u3000", "\u00a0", "\u200b"]
# Combining marks (Mn/Me) from several scripts, including ones that compose under NFKC.
MARKS = ["\u0300", "\u0301", "\u0308", "\u0327", "\u0489", "\u05b8", "\u0e48", "\ufe0f"]


def _is_mark(char: str) -> bool:
    return unicodedata.category(char) in {"Mn", "Me"}


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.sampled_from(NOTHING + MARKS), max_size=60))
@example("\u3164")
@example("\u2800\u034f \u115f\uffa0")
@example("\u3164\u0301\u0301")
def test_filler_blank_and_orphan_mark_only_text_is_empty(value: str) -> None:
    assert clean_text(value) == ""


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.text(string.ascii_letters, min_size=1, max_size=8), min_size=1, max_size=5),
    fillers=st.lists(st.sampled_from(NOTHING), min_size=1, max_size=4),
)
def test_blank_characters_separate_words_like_spaces(words: list[str], fillers: list[str]) -> None:
    dirty = "".join(fillers) + "".join(fillers).join(words) + "".join(fillers)
    cleaned = clean_text(dirty)
    assert not set(cleaned) & (BLANK_CHARACTERS | INVISIBLE_MARKS)
    # a filler between two words reads as a space (or as nothing, for zero-width ones)
    assert cleaned.replace(" ", "") == "".join(words)


@settings(max_examples=400, deadline=None)
@given(value=st.text(st.one_of(st.characters(), st.sampled_from(MARKS)), max_size=200))
@example("a" + "\u0301" * 499)
@example("Z" + "\u0489\u0308" * 40 + "a" + "\u0300" * 9)
@example("\u0301a")
@example("a \u0301b")
def test_marks_per_base_are_capped_and_never_orphaned(value: str) -> None:
    cleaned = clean_text(value)
    run = 0
    for index, char in enumerate(cleaned):
        if _is_mark(char):
            assert index > 0 and cleaned[index - 1] != " ", f"orphan mark at {index}"
            run += 1
            assert run <= MAX_MARKS_PER_BASE, repr(cleaned)
        else:
            run = 0
    assert clean_text(cleaned) == cleaned


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from(["a", "x", "\u05d0", "\u0e01", "Z"]),
    marks=st.lists(st.sampled_from(MARKS), min_size=0, max_size=300),
)
def test_zalgo_body_shrinks_to_its_letter_plus_a_few_marks(base: str, marks: list[str]) -> None:
    cleaned = clean_text(base + "".join(marks))
    decomposed = unicodedata.normalize("NFD", cleaned)
    assert 1 <= len(cleaned) <= 1 + MAX_MARKS_PER_BASE
    # the letter survives (possibly composed with its first marks)
    assert decomposed[0] == unicodedata.normalize("NFD", base)[0]


def test_real_text_keeps_its_marks() -> None:
    for text in ["Tiếng Việt", "שָׁלוֹם", "नमस्ते", "สวัสดี", "❤️ çà et là"]:
        assert clean_text(text) == unicodedata.normalize("NFKC", text)
