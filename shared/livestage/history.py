"""Where chat-history keeps a room's record in Redis (its layout: chat_history/store.py).

Chat-history writes it; the edge reads a room's messages to find a viewer's own lines when they
ask to be forgotten (`DELETE /api/me/memory`), and removes them the way an operator does.
"""

from __future__ import annotations

from typing import Final

from livestage.subjects import check_room

HISTORY_PREFIX: Final = "livestage:history"
HISTORY_KEY_NAMES: Final = ("order", "messages", "sent", "removed", "stored", "seq")


def history_keys(room: str) -> list[str]:
    """The room's keys, in `HISTORY_KEY_NAMES` order (one hash slot per room, for a cluster)."""
    base = f"{HISTORY_PREFIX}:{{{check_room(room)}}}"
    return [f"{base}:{name}" for name in HISTORY_KEY_NAMES]


def messages_key(room: str) -> str:
    """The room's HASH of message id -> ChatMessage JSON (wire form)."""
    return history_keys(room)[1]
