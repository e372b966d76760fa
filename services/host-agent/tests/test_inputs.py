"""The wire's models to the brain's inputs and back (`host_agent.inputs`): plain data, no I/O."""

from __future__ import annotations

from host_agent.brain import Comment, Said, Screen
from host_agent.inputs import (
    comment_from_chat,
    said_from_spoken,
    screen_from_visual,
    spoken_from_said,
    visual_expired,
)
from livestage.schemas import MAX_SPOKEN_CHARS, ChatMessage, SpokenTurn, StageVisual
from tests.support.chat import chat_message, platform_message

ROOM = "main"
T0_MS = 1_800_000_000_000


def chat(room: str = ROOM, **fields: object) -> ChatMessage:
    """Ada's question in `room` at `T0_MS`; `fields` override any other part of it."""
    ada = {"id": "m1", "author_identity": "viewer_ada", "author_name": "Ada", "created_at": T0_MS}
    return chat_message(room, "what is on screen?", **(ada | fields))


def visual(**fields: object) -> StageVisual:
    model = {
        "id": "v1",
        "room": ROOM,
        "kind": "screenshot",
        "url": "/media/v1.png",
        "title": "A comet",
        "summary": "A comet over the hills.",
        "topic": "space",
        "created_at": T0_MS,
        "expires_at": T0_MS + 60_000,
    }
    return StageVisual.model_validate(model | fields)


def test_a_viewers_message_becomes_a_comment_in_seconds() -> None:
    comment = comment_from_chat(chat(), ROOM, approved_at=1_800_000_000.5)
    assert comment == Comment(
        id="m1",
        author_name="Ada",
        author_identity="viewer_ada",
        body="what is on screen?",
        created_at=1_800_000_000.0,
        approved_at=1_800_000_000.5,
    )


def test_the_hosts_own_and_system_messages_are_not_comments() -> None:
    assert comment_from_chat(chat(kind="host"), ROOM, approved_at=0.0) is None
    assert comment_from_chat(chat(kind="system"), ROOM, approved_at=0.0) is None


def test_a_message_of_another_room_is_not_a_comment() -> None:
    assert comment_from_chat(chat(room="other"), ROOM, approved_at=0.0) is None


def test_a_spoken_turn_becomes_what_was_said() -> None:
    turn = SpokenTurn(
        id="t1",
        room=ROOM,
        text="Hello Ada.",
        reply_to=["m1", "m2"],
        interrupted=True,
        kind="reply",
        started_at=T0_MS,
        ended_at=T0_MS + 2_500,
    )
    assert said_from_spoken(turn) == Said(
        text="Hello Ada.",
        kind="reply",
        at=1_800_000_002.5,
        reply_to=("m1", "m2"),
        interrupted=True,
    )


def test_a_visual_becomes_the_screen_the_brain_talks_about() -> None:
    assert screen_from_visual(visual()) == Screen(
        id="v1",
        kind="screenshot",
        title="A comet",
        summary="A comet over the hills.",
        topic="space",
    )


def test_a_visual_expires_at_its_time() -> None:
    expiring = visual(expires_at=T0_MS + 1_000)
    assert not visual_expired(expiring, T0_MS + 999)
    assert visual_expired(expiring, T0_MS + 1_000)


def test_what_was_said_goes_out_as_a_spoken_turn() -> None:
    said = Said(text="Thanks, Ada!", kind="reply", at=1_800_000_003.25, reply_to=("m1",))
    turn = spoken_from_said(
        said,
        id="t9",
        room=ROOM,
        started_at=1_800_000_001.0,
        speaker_name="Nova",
        speaker_identity="agent-host",
    )
    assert turn.model_dump() == {
        "id": "t9",
        "room": ROOM,
        "text": "Thanks, Ada!",
        "reply_to": ["m1"],
        "interrupted": False,
        "speaker_name": "Nova",
        "speaker_identity": "agent-host",
        "kind": "reply",
        "started_at": 1_800_000_001_000,
        "ended_at": 1_800_000_003_250,
    }


def test_a_spoken_turn_never_ends_before_it_started_and_keeps_the_longest_text() -> None:
    said = Said(text="x" * (MAX_SPOKEN_CHARS + 10), kind="monologue", at=1_800_000_000.0)
    turn = spoken_from_said(
        said,
        id="t2",
        room=ROOM,
        started_at=1_800_000_005.0,
        speaker_name="Nova",
        speaker_identity="agent-host",
    )
    assert turn.ended_at == turn.started_at == 1_800_000_005_000
    assert len(turn.text) == MAX_SPOKEN_CHARS


def test_a_platform_message_becomes_a_comment_addressed_on_its_platform() -> None:
    message = platform_message(
        ROOM,
        "Marta sent a Super Chat",
        platform="youtube",
        user_id="UCmarta",
        event="super_chat",
        amount="$5.00",
        created_at=T0_MS,
    )
    comment = comment_from_chat(message, ROOM, approved_at=1_800_000_000.5)
    assert comment is not None
    assert (comment.author_identity, comment.platform) == ("youtube:UCmarta", "YouTube")
    assert (comment.event, comment.amount, comment.is_event) == ("super_chat", "$5.00", True)
    assert comment.addressed_as == "Marta on YouTube"
    twitch = comment_from_chat(platform_message(ROOM, "hi", author_name="Kai"), ROOM, 0.0)
    assert twitch is not None and twitch.addressed_as == "Kai on Twitch" and not twitch.is_event
    page = comment_from_chat(chat(), ROOM, approved_at=0.0)
    assert page is not None and (page.platform, page.addressed_as) == ("", "Ada")
