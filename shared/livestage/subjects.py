"""The only place NATS subject and JetStream stream names are built.

Subjects are `<domain>.<event>.<room>`. A room name becomes one subject token, so it is checked
here: NATS treats `.` as a separator and `*` / `>` as wildcards, and whitespace or control
characters break the protocol line. Anything outside `[A-Za-z0-9_-]{1,64}` is refused with
`InvalidRoomName`, so no caller can widen a subscription or publish into another room.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

ROOM_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a room name may be (it is also a valid LiveKit room name)."""


class InvalidRoomName(ValueError):
    """A room name that cannot be used as one NATS subject token."""


def check_room(room: str) -> str:
    """Return `room` if it is a safe single subject token, else raise InvalidRoomName."""
    if not isinstance(room, str) or not ROOM_NAME_PATTERN.fullmatch(room):
        raise InvalidRoomName(
            f"room name {room!r} is not allowed: use 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
        )
    return room


@dataclass(frozen=True)
class Stream:
    """A JetStream stream: one per domain, capturing every subject of that domain."""

    name: str
    domain: str

    @property
    def subjects(self) -> list[str]:
        return [f"{self.domain}.>"]


CHAT: Final = Stream("CHAT", "chat")
HOST: Final = Stream("HOST", "host")
STAGE: Final = Stream("STAGE", "stage")
ROOM: Final = Stream("ROOM", "room")
STREAMS: Final = (CHAT, HOST, STAGE, ROOM)
DEADLETTER: Final = Stream("DEADLETTER", "deadletter")
"""Messages a durable consumer gave up on (`livestage.deadletter`), kept longer than the domain
streams (`NATS_DEADLETTER_MAX_AGE_S`) for an operator to inspect and replay."""

CONSUMER_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a durable consumer's name may be (one subject token, like a room)."""

UNKNOWN_ROOM: Final = "_"
"""The room token of a dead letter whose original subject names no valid room."""


def _subject(domain: str, event: str, room: str) -> str:
    return f"{domain}.{event}.{check_room(room)}"


def chat_submitted(room: str) -> str:
    return _subject("chat", "submitted", room)


def chat_approved(room: str) -> str:
    return _subject("chat", "approved", room)


def chat_rejected(room: str) -> str:
    return _subject("chat", "rejected", room)


def chat_removed(room: str) -> str:
    """An operator removed a message: history forgets it and every page hides it."""
    return _subject("chat", "removed", room)


def chat_banned(room: str) -> str:
    """An operator banned a visitor: they are removed from the room and refused from now on."""
    return _subject("chat", "banned", room)


def chat_unbanned(room: str) -> str:
    """An operator lifted a ban."""
    return _subject("chat", "unbanned", room)


def host_spoken(room: str) -> str:
    return _subject("host", "spoken", room)


def host_control(room: str) -> str:
    return _subject("host", "control", room)


def host_job(room: str) -> str:
    """A host agent job started, went live (a viewer came) or ended, with the reason."""
    return _subject("host", "job", room)


def host_worker(agent_name: str) -> str:
    """A host agent worker registered with LiveKit under `agent_name` (the last token; it obeys
    the room-name rule): edges re-dispatch rooms whose dispatch no worker could take."""
    return _subject("host", "worker", agent_name)


def stage_visual(room: str) -> str:
    return _subject("stage", "visual", room)


def stage_command(room: str) -> str:
    """An operator's instruction to the stage producer (capture, backdrop, pin, unpin)."""
    return _subject("stage", "command", room)


def stage_layout(room: str) -> str:
    """An operator switched the stage layout (`StageLayoutEvent`); the pages follow it."""
    return _subject("stage", "layout", room)


def room_presence(room: str) -> str:
    return _subject("room", "presence", room)


def room_show(room: str) -> str:
    """An operator ended or started the show (`ShowEvent`): the host job, the stage producer
    and the pages follow it; the edge dispatches no host while it is ended."""
    return _subject("room", "show", room)


def room_config(room: str) -> str:
    """A show was created, changed or deleted (`ShowConfigEvent`): the stage producer (and any
    service without Redis) follows it from the last event per room."""
    return _subject("room", "config", room)


def room_egress(room: str) -> str:
    """A LiveKit egress of the room's `/stage` page changed state (`EgressEvent`)."""
    return _subject("room", "egress", room)


def history_recent(room: str) -> str:
    """Core-NATS request/reply subject (not in a stream): recent approved chat of a room."""
    return _subject("history", "recent", room)


def deadletter(consumer: str, room: str) -> str:
    """Where consumer `consumer` files a message of `room` it gave up on."""
    return f"deadletter.{_check_consumer(consumer)}.{check_room(room)}"


def deadletters(consumer: str | None = None, room: str | None = None) -> str:
    """A filter over dead letters: of one consumer and/or one room, or all of them."""
    consumer_token = "*" if consumer is None else _check_consumer(consumer)
    room_token = "*" if room is None else check_room(room)
    return f"deadletter.{consumer_token}.{room_token}"


def _check_consumer(consumer: str) -> str:
    if not CONSUMER_NAME_PATTERN.fullmatch(consumer):
        raise ValueError(
            f"consumer name {consumer!r} is not allowed: use 1-64 of A-Z, a-z, 0-9, '_' or '-'"
        )
    return consumer


def all_rooms(domain: str, event: str) -> str:
    """Wildcard over every room for one event, for consumers that serve all rooms."""
    if not re.fullmatch(r"[a-z]+", domain) or not re.fullmatch(r"[a-z]+", event):
        raise ValueError(f"bad subject parts {domain!r}.{event!r}")
    return f"{domain}.{event}.*"


def room_of(subject: str) -> str:
    """The room token of a `<domain>.<event>.<room>` subject (validated)."""
    parts = subject.split(".")
    if len(parts) != 3:
        raise ValueError(f"subject {subject!r} is not <domain>.<event>.<room>")
    return check_room(parts[2])
