"""Forgetting a viewer: "Forget me" on the page (`DELETE /api/me/memory`) and an operator's
erase (`DELETE /api/operator/viewers/{key}/memory`) do the same three things.

1. The memory card goes (`MemoryStore.forget`), leaving `livestage:memory:erased:<key>` with
   only the time of the erasure (for MEMORY_RETENTION_DAYS): an answer or extraction still in
   flight about an older message cannot bring the memory back, and the next greeting is a
   first greeting.
2. Every line the viewer wrote that chat-history still keeps, in every show's room, is removed
   the way an operator removes a message: a `ChatRemoval` on `chat.removed.<room>` (chat-history
   deletes it from Redis, keeps it out if it comes again, and tells every page to hide it).
3. Every other Redis key named after the viewer is deleted (found by SCAN, so a key a later
   change adds is covered too): the edge's rate-limit buckets, moderation's recent messages,
   strikes and mute, the network the edge last saw them come from. Bans stay: a ban is an
   operator's decision about the visitor, kept as a field of the room's ban list, not a key of
   theirs. Only a visitor tag as the edge issues them (16 hex characters) or a platform
   identity (`twitch:<user id>`) is looked for this way, as a whole word of the key's name; a
   shorter key that could be part of other names (a room's, a number) erases 1 and 2 only.

Messages still on their way through moderation when the viewer asks are not in history yet and
are not removed; they are at most a few seconds old and the page says it can be asked again.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from livestage import subjects
from livestage.history import messages_key
from livestage.identity import platform_of
from livestage.memory import erased_key, memory_key_of
from livestage.schemas import ChatRemoval, now_ms, removal_id

from .deps import Services
from .visitors import TAG_HEX

log = logging.getLogger(__name__)

ERASE_REASON: Final = "the viewer asked to be forgotten"
SCAN_COUNT: Final = 1000
_ISSUED_TAG: Final = re.compile(rf"[0-9a-f]{{{TAG_HEX}}}")


@dataclass(frozen=True)
class Erasure:
    erased_at: int
    messages_removed: int
    keys_deleted: int


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def scannable(key: str) -> bool:
    """Whether a key is distinctive enough to find the viewer's Redis keys by their names."""
    return bool(_ISSUED_TAG.fullmatch(key)) or platform_of(key) is not None


def names_viewer(name: str, key: str) -> bool:
    """Whether the Redis key `name` has `key` as a whole word (not inside a longer id)."""
    word = rf"(?<![A-Za-z0-9_-]){re.escape(key)}(?![A-Za-z0-9_-])"
    return re.search(word, name) is not None


async def keys_named_after(redis: Redis, key: str) -> list[str]:
    """Every Redis key named after the viewer except their erasure record."""
    if not scannable(key):
        return []
    keep = erased_key(key)
    found: list[str] = []
    async for raw in redis.scan_iter(match=f"*{key}*", count=SCAN_COUNT):
        name = _text(raw)
        if name != keep and names_viewer(name, key):
            found.append(name)
    return found


async def authored_ids(redis: Redis, room: str, key: str) -> list[str]:
    """The ids of the messages in `room`'s history whose author is the viewer `key`."""
    needle = key.encode()
    ids: list[str] = []
    async for field, raw in redis.hscan_iter(messages_key(room), count=SCAN_COUNT):
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        if needle not in data:  # most lines are someone else's: no parse
            continue
        try:
            identity = json.loads(data).get("authorIdentity")
        except (ValueError, AttributeError):
            continue
        if isinstance(identity, str) and memory_key_of(identity) == key:
            ids.append(_text(field))
    return ids


async def forget_viewer(services: Services, key: str) -> Erasure:
    """Erase what is kept about the viewer `key` (see the module docstring). Idempotent: a
    repeat finds less to do. Raises BusUnavailable (a 503) when NATS is away: the memory and
    the keys are gone then, the lines not yet; repeating the request removes them."""
    redis = services.redis
    erased_at = await services.memories.forget(key)
    rooms = await services.shows.rooms()
    # a key that is also a room's name would match the room's own keys: those are not theirs
    doomed = [] if key in rooms else await keys_named_after(redis, key)
    for name in doomed:  # one by one: keys of different hash slots (a cluster)
        await redis.delete(name)
    removals = [
        ChatRemoval(
            id=removal_id(message_id),
            room=room,
            message_id=message_id,
            reason=ERASE_REASON,
            created_at=now_ms(),
        )
        for room in rooms
        for message_id in await authored_ids(redis, room, key)
    ]
    bus = services.require_bus() if removals else None
    for removal in removals:
        assert bus is not None
        await bus.publish(subjects.chat_removed(removal.room), removal)
    log.info(
        "forgot a viewer: %d message(s) removed, %d key(s) deleted", len(removals), len(doomed)
    )
    return Erasure(erased_at, len(removals), len(doomed))
