"""Property tests: every wire model round-trips through JSON, and bad input is refused clearly."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from livestage import schemas
from livestage.schemas import (
    CHAT_EVENT_ADAPTER,
    DEFLATED_BATCH_PREFIX,
    MAX_EPOCH_MS,
    MAX_INFLATED_BYTES,
    MIN_EPOCH_MS,
    BanEvent,
    ChatBatchEvent,
    ChatMessage,
    ChatMessageEvent,
    ChatRejectedEvent,
    ChatRemoval,
    ChatRemovedEvent,
    DeadLetter,
    HistoryReply,
    HistoryRequest,
    HostCommand,
    HostJobEvent,
    HostWorkerEvent,
    ModerationVerdict,
    PresenceEvent,
    SpokenTurn,
    StageCommand,
    StageVisual,
    chat_events_of,
    deflate_packet,
    inflate_packet,
    new_id,
    now_ms,
)
from livestage.text import clean_text

TOKEN_CHARS = string.ascii_letters + string.digits + "_-"

ids = st.text(TOKEN_CHARS, min_size=1, max_size=64)
rooms = st.text(TOKEN_CHARS, min_size=1, max_size=64)
identities = st.text(TOKEN_CHARS + ".:@", min_size=1, max_size=128)
epoch = st.integers(MIN_EPOCH_MS, MAX_EPOCH_MS)
avatars = st.text(string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=32)


def model(cls: type, **fields: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Build `cls` from keyword strategies (st.builds would read the camelCase signature)."""
    return st.fixed_dictionaries(fields).map(lambda values: cls(**values))


def room_event(cls: type, **fields: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """`model` for the messages on a room's subjects: each has an id and its room."""
    return model(cls, id=ids, room=rooms, **fields)


def clean(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return (
        st.text(min_size=min_size, max_size=max_size * 2)
        .map(clean_text)
        .filter(lambda value: min_size <= len(value) <= max_size)
    )


urls = st.one_of(
    st.builds(lambda path: "https://example.org/" + path, st.text(TOKEN_CHARS, max_size=40)),
    st.builds(lambda path: "/assets/" + path, st.text(TOKEN_CHARS, max_size=40)),
)

chat_sources = model(
    schemas.ChatSource,
    platform=st.sampled_from(["youtube", "twitch"]),
    user_id=st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=64),
    message_id=st.text(min_size=1, max_size=256),
    roles=st.lists(
        st.sampled_from(["broadcaster", "moderator", "member", "subscriber", "vip"]), max_size=5
    ),
    event=st.sampled_from(["message", "super_chat", "membership", "subscription", "cheer"]),
    amount=clean(0, 32),
)

chat_messages = room_event(
    ChatMessage,
    author_identity=identities,
    author_name=clean(1, schemas.MAX_NAME_CHARS),
    avatar=avatars,
    body=clean(1, schemas.MAX_CHAT_CHARS),
    kind=st.sampled_from(["viewer", "host", "system"]),
    created_at=epoch,
    source=st.none() | chat_sources,
)

MODELS = {
    "ChatMessage": chat_messages,
    "ModerationVerdict": model(
        ModerationVerdict,
        message_id=ids,
        room=rooms,
        author_identity=identities,
        verdict=st.sampled_from(["approved", "rejected"]),
        reason=st.text(max_size=300),
        checks=st.lists(st.text(max_size=64), max_size=16),
        decided_at=epoch,
    ),
    "SpokenTurn": room_event(
        SpokenTurn,
        text=st.text(max_size=400),
        reply_to=st.lists(ids, max_size=8),
        interrupted=st.booleans(),
        speaker_name=clean(1, schemas.MAX_NAME_CHARS),
        speaker_identity=identities,
        kind=st.sampled_from(["reply", "monologue", "say"]),
        started_at=epoch,
        ended_at=epoch,
    ),
    "StageVisual": room_event(
        StageVisual,
        kind=st.sampled_from(["screenshot", "clip", "backdrop"]),
        url=urls,
        source_url=st.text(max_size=200),
        title=st.text(max_size=300),
        summary=st.text(max_size=500),
        topic=st.text(max_size=300),
        created_at=epoch,
        expires_at=epoch,
    ),
    "PresenceEvent": room_event(
        PresenceEvent,
        event=st.sampled_from(
            ["participant_joined", "participant_left", "room_started", "room_finished"]
        ),
        identity=st.text(max_size=128),
        name=st.text(max_size=128),
        participant_kind=st.sampled_from(["", "standard", "agent"]),
        created_at=epoch,
    ),
    "HostCommand": room_event(
        HostCommand,
        action=st.sampled_from(["pause", "resume", "say", "skip", "persona", "handover"]),
        text=st.text(max_size=400),
        created_at=epoch,
    ),
    "HostJobEvent": room_event(
        HostJobEvent,
        job_id=st.text(max_size=128),
        event=st.sampled_from(["started", "live", "ended"]),
        reason=st.text(max_size=300),
        voice=st.text(max_size=64),
        avatar=st.text(max_size=64),
        usage=st.dictionaries(
            st.text(max_size=64), st.floats(allow_nan=False, allow_infinity=False), max_size=8
        ),
        created_at=epoch,
    ),
    "HostWorkerEvent": model(
        HostWorkerEvent,
        id=ids,
        agent_name=rooms,
        worker_id=st.text(max_size=128),
        created_at=epoch,
    ),
    "ChatRemoval": room_event(
        ChatRemoval,
        message_id=ids,
        reason=st.text(max_size=300),
        created_at=epoch,
    ),
    "BanEvent": room_event(
        BanEvent,
        visitor_tag=st.text(string.ascii_lowercase + string.digits, min_size=8, max_size=32),
        identity=st.text(max_size=128),
        reason=st.text(max_size=300),
        expires_at=st.one_of(st.just(0), epoch),
        created_at=epoch,
    ),
    "StageCommand": room_event(
        StageCommand,
        action=st.sampled_from(["capture", "backdrop", "pin", "unpin"]),
        url=st.text(max_size=200),
        kind=st.sampled_from(["screenshot", "clip"]),
        prompt=st.text(max_size=300),
        visual_id=st.text(max_size=64),
        created_at=epoch,
    ),
    "ChatMessageEvent": model(ChatMessageEvent, message=chat_messages),
    "ChatRemovedEvent": model(ChatRemovedEvent, message_id=ids),
    "ChatRejectedEvent": model(ChatRejectedEvent, message_id=ids, reason=st.text(max_size=300)),
    "HistoryRequest": model(HistoryRequest, room=rooms, limit=st.integers(1, 200)),
    "HistoryReply": model(HistoryReply, messages=st.lists(chat_messages, max_size=5)),
    "DeadLetter": model(
        DeadLetter,
        consumer=ids,
        reason=st.sampled_from(["exhausted", "invalid"]),
        error=st.text(max_size=2000),
        subject=st.text(min_size=1, max_size=256),
        room=rooms,
        headers=st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=4),
        payload=st.text(max_size=500),
        payload_encoding=st.sampled_from(["utf-8", "base64"]),
        deliveries=st.integers(0, 1000),
        stream=st.text(max_size=64),
        stream_seq=st.integers(0, 2**53),
        stored_at=epoch,
        failed_at=epoch,
    ),
}


def test_every_wire_model_has_a_strategy() -> None:
    assert {model.__name__ for model in schemas.WIRE_MODELS} == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    model = data.draw(MODELS[name])
    wire = model.to_json()
    assert type(model).from_json(wire) == model
    # camelCase on the wire, never snake_case keys
    keys = set(json.loads(wire))
    assert all("_" not in key for key in keys), keys


@settings(max_examples=60, deadline=None)
@given(event=st.one_of(MODELS["ChatMessageEvent"], MODELS["ChatRejectedEvent"]))
def test_chat_events_decode_by_type(event: ChatMessageEvent | ChatRejectedEvent) -> None:
    assert CHAT_EVENT_ADAPTER.validate_json(event.to_json()) == event


def valid_chat_wire() -> dict[str, object]:
    return {
        "id": "abc123",
        "room": "livestage",
        "authorIdentity": "viewer_abcdefgh_0123abcd",
        "authorName": "Ada",
        "avatar": "fox",
        "body": "hello",
        "kind": "viewer",
        "createdAt": 1_800_000_000_000,
    }


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("kind", "admin", "viewer"),
        ("createdAt", 1700, "greater than or equal"),
        ("createdAt", "1800000000000", "valid integer"),
        ("room", "a.b", "pattern"),
        ("room", "chat.*", "pattern"),
        ("body", "", "at least 1"),
        ("body", "x" * 501, "at most 500"),
        ("body", "hi\u202eevil", "normalized text"),
        ("body", "hi\u200bthere", "normalized text"),
        ("authorName", "  Ada", "normalized text"),
        ("authorName", "A" * 33, "at most 32"),
        ("id", "has space", "pattern"),
    ],
)
def test_invalid_chat_fields_are_named(field: str, value: object, fragment: str) -> None:
    wire = valid_chat_wire() | {field: value}
    with pytest.raises(ValidationError) as caught:
        ChatMessage.from_json(json.dumps(wire))
    errors = caught.value.errors()
    assert [error["loc"] for error in errors] == [(field,)]
    assert fragment in errors[0]["msg"]


def test_unknown_and_missing_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        ChatMessage.from_json(json.dumps(valid_chat_wire() | {"isAdmin": True}))
    wire = valid_chat_wire()
    del wire["body"]
    with pytest.raises(ValidationError) as caught:
        ChatMessage.from_json(json.dumps(wire))
    assert caught.value.errors()[0]["loc"] == ("body",)


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(MIN_EPOCH_MS - 10, MAX_EPOCH_MS + 10),
    epoch.map(str),  # a number in a string: strict models refuse it
    epoch.map(float),  # an integral float: strict models refuse it too
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=24),
    st.sampled_from(["viewer", "host", "system", "fox", "Ada", "abc-123", "viewer_abcdefgh_0"]),
    st.lists(st.integers(), max_size=2),
)
CHAT_WIRE_KEYS = sorted(valid_chat_wire())


@settings(max_examples=400, deadline=None)
@given(
    field=st.sampled_from([*CHAT_WIRE_KEYS, "isAdmin", "author_identity", "created_at", ""]),
    value=json_values,
)
def test_one_changed_field_is_refused_by_name_or_kept_exactly(field: str, value: object) -> None:
    """Change one key of a valid message: it is either refused with an error naming exactly that
    key, or it is a real field and the message carries exactly the value sent (no coercion, no
    unknown key slipping through, no snake_case twin of a wire name)."""
    wire = valid_chat_wire() | {field: value}
    try:
        message = ChatMessage.from_json(json.dumps(wire))
    except ValidationError as error:
        assert {e["loc"] for e in error.errors()} == {(field,)}, error.errors()
        return
    assert field in CHAT_WIRE_KEYS
    assert message.to_wire() == wire


@settings(max_examples=200, deadline=None)
@given(missing=st.sets(st.sampled_from(CHAT_WIRE_KEYS), min_size=1))
def test_every_missing_field_is_named(missing: set[str]) -> None:
    wire = {key: value for key, value in valid_chat_wire().items() if key not in missing}
    with pytest.raises(ValidationError) as caught:
        ChatMessage.from_json(json.dumps(wire))
    assert {e["loc"] for e in caught.value.errors()} == {(key,) for key in missing}
    assert {e["type"] for e in caught.value.errors()} == {"missing"}


@settings(max_examples=100, deadline=None)
@given(url=st.text(max_size=60).filter(lambda u: not u.startswith(("http://", "https://", "/"))))
def test_stage_visual_urls_must_be_http_or_relative(url: str) -> None:
    with pytest.raises(ValidationError):
        StageVisual(
            id="v1",
            room="r",
            kind="backdrop",
            url=url,
            created_at=MIN_EPOCH_MS,
            expires_at=MIN_EPOCH_MS,
        )


def test_a_compressed_batch_reads_as_its_events_and_a_bad_one_is_refused() -> None:
    events = [ChatMessageEvent(message=_chat_line(n), seq=n + 1) for n in range(30)] + [
        ChatRemovedEvent(message_id=new_id())
    ]
    plain = ChatBatchEvent(events=events).to_json()
    packet = deflate_packet(plain)
    assert packet.startswith(DEFLATED_BATCH_PREFIX) and len(packet) < len(plain) / 3
    assert inflate_packet(packet) == plain
    assert chat_events_of(packet) == events
    assert chat_events_of(plain) == events  # plain JSON batches still read
    assert inflate_packet(plain) is plain
    with pytest.raises(ValueError, match="corrupt"):
        chat_events_of(DEFLATED_BATCH_PREFIX + b"\xff\xff not deflate")
    with pytest.raises(ValueError, match="cut short"):
        chat_events_of(packet[: len(packet) // 2])
    bomb = deflate_packet(b" " * (MAX_INFLATED_BYTES + 10))
    with pytest.raises(ValueError, match="inflates beyond"):
        chat_events_of(bomb)
    with pytest.raises(ValueError):
        chat_events_of(deflate_packet(b'{"type":"nope"}'))


def _chat_line(n: int) -> ChatMessage:
    return ChatMessage(
        id=new_id(),
        room="lobby",
        author_identity=f"viewer-{n}",
        author_name=f"Viewer {n}",
        avatar="fox",
        body=f"line {n}: hello there",
        kind="viewer",
        created_at=now_ms(),
    )
