"""The pure decisions: host turns as chat lines, what to send, whose participants a ban hits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat_history.decisions import (
    ELLIPSIS,
    StoreOutcome,
    message_from_turn,
    participants_of_visitor,
    shorten,
    should_send,
)
from livestage.schemas import SpokenTurn
from livestage.text import is_clean

NOW = 1_750_000_000_000


def turn(text: str, **fields: object) -> SpokenTurn:
    values: dict[str, object] = {
        "id": "turn1",
        "room": "main",
        "text": text,
        "started_at": NOW,
        "ended_at": NOW + 1500,
    }
    values.update(fields)
    return SpokenTurn(**values)  # type: ignore[arg-type]


def test_a_turn_becomes_a_host_line_named_after_its_speaker() -> None:
    message = message_from_turn(
        turn("Hi  there!", speaker_name="Cara", speaker_identity="agent-X"), 500
    )
    assert message is not None
    assert (message.id, message.kind, message.author_name, message.author_identity) == (
        "turn1",
        "host",
        "Cara",
        "agent-X",
    )
    assert (message.body, message.created_at, message.avatar) == ("Hi there!", NOW, "host")


def test_nothing_said_is_no_line() -> None:
    assert message_from_turn(turn(""), 500) is None
    assert message_from_turn(turn(" \u200b\n"), 500) is None
    assert message_from_turn(turn("", interrupted=True), 500) is None


def test_an_interrupted_turn_shows_what_was_said_marked_as_cut() -> None:
    message = message_from_turn(turn("So as I was saying", interrupted=True), 500)
    assert message is not None and message.body == "So as I was saying" + ELLIPSIS


def test_a_long_turn_is_cut_at_a_word() -> None:
    message = message_from_turn(turn("word " * 300), 100)
    assert message is not None
    assert len(message.body) <= 100
    assert message.body.endswith("word" + ELLIPSIS)


@given(st.text(min_size=1, max_size=1200), st.integers(min_value=20, max_value=500), st.booleans())
def test_any_turn_text_gives_a_valid_bounded_line(text: str, limit: int, interrupted: bool) -> None:
    message = message_from_turn(turn(text[:4000], interrupted=interrupted), limit)
    if message is not None:
        assert 1 <= len(message.body) <= limit
        assert is_clean(message.body)


def test_shorten_keeps_short_text() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("a" * 30, 10) == "a" * 7 + ELLIPSIS


def test_what_is_sent() -> None:
    sent = {outcome for outcome in StoreOutcome if should_send(outcome)}
    assert sent == {StoreOutcome.STORED, StoreOutcome.PENDING, StoreOutcome.TRIMMED}


def test_a_ban_hits_every_tab_of_that_visitor_and_nobody_else() -> None:
    identities = [
        "viewer_aaaaaaaa11111111_0000000a",
        "viewer_aaaaaaaa11111111_0000000b",
        "viewer_bbbbbbbb22222222_0000000c",
        "viewer_aaaaaaaa1111111_0000000d",  # a prefix of the tag is another visitor
        "anam-avatar-host",
        "agent-AJ_x",
    ]
    assert participants_of_visitor(identities, "aaaaaaaa11111111") == identities[:2]
