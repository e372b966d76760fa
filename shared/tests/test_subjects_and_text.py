"""Subject names refuse unsafe rooms; the text sanitizer leaves only visible, tidy text."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from livestage import subjects
from livestage.text import clean_text, is_clean

BUILDERS = [
    subjects.chat_submitted,
    subjects.chat_approved,
    subjects.chat_rejected,
    subjects.host_spoken,
    subjects.host_control,
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
