"""Pure decisions of chat-history: data in, data out, no I/O (the wiring in `app.py` acts).

- How a host turn (`SpokenTurn`) becomes a chat line (`kind: "host"`), or none.
- What a store outcome means for the send to the room.
- Which participants of a room belong to a banned visitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from livestage.identity import visitor_tag_of
from livestage.schemas import ChatMessage, SpokenTurn
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
