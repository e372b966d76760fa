"""Pure decisions of chat-history: data in, data out, no I/O (the wiring in `app.py` acts).

- How a host turn (`SpokenTurn`) becomes a chat line (`kind: "host"`), or none.
- What a store outcome means for the send to the room.
- Which participants of a room belong to a banned visitor.
- How a window of chat events is ordered and packed into data packets (`fanout.py` sends).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from livestage.identity import visitor_tag_of
from livestage.schemas import (
    MAX_BATCH_EVENTS,
    ChatMessage,
    ChatMessageEvent,
    ChatRemovedEvent,
    SpokenTurn,
    deflate_packet,
)
from livestage.text import ELLIPSIS, clean_text, shorten

HOST_AVATAR = "host"
"""The avatar id of host lines (the page shows its own glyph for `kind: "host"`)."""


class StoreOutcome(StrEnum):
    """What writing one message to the room's history found (see `store.HistoryStore.store`)."""

    STORED = "stored"  # new: stored now
    PENDING = "pending"  # stored by an earlier delivery that died before its send was recorded
    DELIVERED = "delivered"  # stored and sent by an earlier delivery (its ack was lost)
    TRIMMED = "trimmed"  # new, but older than the newest `max_messages`: not kept
    REMOVED = "removed"  # an operator removed it (possibly before it got here)
    EXPIRED = "expired"  # older than the max age: not kept


def should_send(outcome: StoreOutcome) -> bool:
    """Send to the room unless viewers already have it, it was removed, or it is too old.

    A redelivery after a crash between the write and the send finds PENDING and sends: viewers
    drop duplicates by id, while a lost message could not be recovered. A late message that
    history no longer keeps (TRIMMED) is still live chat and is sent.
    """
    return outcome in (StoreOutcome.STORED, StoreOutcome.PENDING, StoreOutcome.TRIMMED)


def cutoff_ms(now_ms: int, max_age_s: int) -> int:
    """The oldest createdAt still kept: anything strictly older is gone."""
    return now_ms - max_age_s * 1000


def message_from_turn(turn: SpokenTurn, max_chars: int) -> ChatMessage | None:
    """The chat line for what the host said, or None when nothing was said.

    An interrupted turn is shown as far as it was spoken (the host agent publishes what was
    actually played), ending in an ellipsis so readers see it was cut short.
    """
    text = clean_text(turn.text)
    if not text:
        return None
    if turn.interrupted and not text.endswith(ELLIPSIS):
        text = shorten(text, max_chars - len(ELLIPSIS)) + ELLIPSIS
    else:
        text = shorten(text, max_chars)
    text = clean_text(text)  # a cut can split a combining sequence: normalize once more
    return ChatMessage(
        id=turn.id,
        room=turn.room,
        author_identity=turn.speaker_identity,
        author_name=turn.speaker_name,
        avatar=HOST_AVATAR,
        body=text,
        kind="host",
        created_at=turn.started_at,
    )


def participants_of_visitor(identities: Iterable[str], visitor_tag: str) -> list[str]:
    """The identities (viewer participants) that carry `visitor_tag`; nobody else."""
    return [identity for identity in identities if visitor_tag_of(identity) == visitor_tag]


FanoutEvent = ChatMessageEvent | ChatRemovedEvent

MAX_PACKET_BYTES = 14 * 1024
"""The largest data packet chat-history sends: LiveKit caps a reliable packet at about 15 KiB
(REFERENCE.md); the rest is headroom for its own framing."""
_BATCH_HEAD = b'{"type":"batch","events":['
_BATCH_TAIL = b"]}"


def packet_order(events: Sequence[FanoutEvent]) -> list[int]:
    """The order a window's events are sent in (indices into `events`): messages with an
    approval place by `seq`, then those without (host lines) as they came, then removals (so
    a removal follows the message it removes when both fall in one window)."""

    def key(index: int) -> tuple[int, int]:
        event = events[index]
        if isinstance(event, ChatRemovedEvent):
            return (2, index)
        return (0, event.seq) if event.seq else (1, index)

    return sorted(range(len(events)), key=key)


def pack(
    sizes: Sequence[int], max_bytes: int = MAX_PACKET_BYTES, max_events: int = MAX_BATCH_EVENTS
) -> list[list[int]]:
    """Split events of these encoded sizes, in order, into packets (lists of positions): as
    few as possible, each a batch of at most `max_bytes` and `max_events`. An event too large
    to share a packet goes alone (sent as itself, without the batch's wrapping)."""
    packets: list[list[int]] = []
    current: list[int] = []
    used = len(_BATCH_HEAD) + len(_BATCH_TAIL)
    for position, size in enumerate(sizes):
        grown = used + size + (1 if current else 0)
        if current and (grown > max_bytes or len(current) >= max_events):
            packets.append(current)
            current, used = [], len(_BATCH_HEAD) + len(_BATCH_TAIL)
            grown = used + size
        current.append(position)
        used = grown
    if current:
        packets.append(current)
    return packets


def batch_json(encoded: Iterable[bytes]) -> bytes:
    """A `ChatBatchEvent` packet from its events' JSON (each encoded once, by the caller)."""
    return _BATCH_HEAD + b",".join(encoded) + _BATCH_TAIL


DEFLATE_BUDGET = 4
"""How much more batch JSON than `max_bytes` a compressed packet is first tried with (chat JSON
deflates 4-6x: its keys, room and avatars repeat); a packet that still deflates too large is
split in halves."""


def packets(
    encoded: Sequence[bytes], max_bytes: int = MAX_PACKET_BYTES, *, deflate: bool = True
) -> list[tuple[list[int], bytes]]:
    """The packets that carry these events' JSON, in order: (positions, packet bytes), each at
    most `max_bytes` unless a lone event is larger. One event goes as its own JSON; several as
    a batch, compressed (`deflate_packet`) with `deflate` when that is smaller."""
    budget = max_bytes * DEFLATE_BUDGET if deflate else max_bytes
    out: list[tuple[list[int], bytes]] = []

    def add(chunk: list[int]) -> None:
        if len(chunk) == 1:
            out.append((chunk, encoded[chunk[0]]))
            return
        data = batch_json(encoded[i] for i in chunk)
        if deflate:
            data = min(data, deflate_packet(data), key=len)
        if len(data) <= max_bytes:
            out.append((chunk, data))
            return
        half = len(chunk) // 2
        add(chunk[:half])
        add(chunk[half:])

    for chunk in pack([len(data) for data in encoded], budget):
        add(chunk)
    return out
