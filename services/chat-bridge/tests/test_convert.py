"""The pure part: a platform item as a chat line, a host turn as a platform reply."""

from __future__ import annotations

import hashlib

import pytest

from chat_bridge.convert import (
    Unpublishable,
    chat_id,
    display_name,
    reply_target,
    reply_text,
    to_chat_message,
)
from livestage.schemas import MAX_CHAT_CHARS, MAX_NAME_CHARS, ChatMessage, now_ms

from .conftest import item


def test_a_message_becomes_a_viewer_line_with_its_source() -> None:
    message = item("twitch", "  hi   there\u200b ", user_id="1234", roles=("subscriber",))
    chat = to_chat_message(message, "room-1", now_ms())
    digest = hashlib.sha256(f"twitch:{message.message_id}".encode()).hexdigest()[:32]
    assert chat.id == digest == chat_id("twitch", message.message_id)
    assert (chat.author_identity, chat.author_name, chat.avatar) == (
        "twitch:1234",
        "Marta",
        "twitch",
    )
    assert (chat.body, chat.kind, chat.room) == ("hi there", "viewer", "room-1")
    assert chat.source is not None
    assert (chat.source.platform, chat.source.user_id, chat.source.message_id) == (
        "twitch",
        "1234",
        message.message_id,
    )
    assert chat.source.roles == ["subscriber"]
    assert ChatMessage.from_json(chat.to_json()) == chat  # valid on the wire


@pytest.mark.parametrize(
    ("event", "amount", "line"),
    [
        ("super_chat", "$5.00", "sent a Super Chat of $5.00"),
        ("membership", "", "became a member"),
        ("subscription", "Tier 1", "subscribed (Tier 1)"),
        ("cheer", "100 bits", "cheered 100 bits"),
    ],
)
def test_an_event_without_text_says_what_happened(event: str, amount: str, line: str) -> None:
    chat = to_chat_message(item("youtube", "", event=event, amount=amount), "r", now_ms())
    assert chat.body == line
    assert chat.source is not None and (chat.source.event, chat.source.amount) == (event, amount)


def test_an_event_with_text_keeps_the_text() -> None:
    chat = to_chat_message(item("youtube", "love the show", event="super_chat"), "r", now_ms())
    assert chat.body == "love the show"


def test_a_long_body_is_cut_to_the_chat_limit() -> None:
    chat = to_chat_message(item(text="word " * 200), "r", now_ms())
    assert len(chat.body) <= MAX_CHAT_CHARS and chat.body.startswith("word word")


@pytest.mark.parametrize(
    "given",
    [
        {"text": "   \u200b "},  # nothing visible
        {"user_id": "has space"},  # not a platform user id
        {"message_id": ""},
        {"message_id": "x" * 300},
    ],
)
def test_what_cannot_be_shown_is_unpublishable(given: dict[str, str]) -> None:
    with pytest.raises(Unpublishable):
        to_chat_message(item(**given), "r", now_ms())


@pytest.mark.parametrize(
    ("raw", "roles", "shown"),
    [
        ("Marta", (), "Marta"),
        ("\u200b\u3164", (), "Twitch viewer"),  # nothing visible
        ("TheRealNova", (), "Twitch viewer"),  # passes for the host
        ("Adm1n", (), "Twitch viewer"),  # passes for staff
        ("Nova", ("broadcaster",), "Nova"),  # the channel's own name
        ("ModSquadLead", ("moderator",), "ModSquadLead"),
    ],
)
def test_names_are_cleaned_like_page_names(raw: str, roles: tuple[str, ...], shown: str) -> None:
    assert display_name("twitch", raw, roles) == shown  # type: ignore[arg-type]


def test_a_long_name_is_cut_and_stays_clean() -> None:
    name = display_name("youtube", "Ab " * 30)
    assert len(name) <= MAX_NAME_CHARS and name == name.strip()


def test_a_reply_addresses_the_viewers_and_fits_each_platform() -> None:
    long = "Great question. " * 60
    twitch = reply_text("twitch", long, ["Marta", "Tom"])
    youtube = reply_text("youtube", long, ["@marta-yt"])
    assert twitch.startswith("@Marta @Tom Great question.") and len(twitch) <= 500
    assert youtube.startswith("@marta-yt Great question.") and len(youtube) <= 200
    assert twitch.endswith("...") and youtube.endswith("...")
    assert not youtube.endswith(" ...")  # cut at a word boundary
    assert reply_text("twitch", "  ", ["Marta"]) == ""
    assert reply_text("twitch", "Hi!", []) == "Hi!"


def test_the_reply_target_keeps_the_platform_name() -> None:
    target = reply_target(item("twitch", user_name="TheRealNova", user_id="42"))
    assert (target.platform, target.user_id, target.user_name) == ("twitch", "42", "TheRealNova")
