"""Operator bans, kept in Redis so every edge replica and every moderation instance sees them.

A ban is per room and per visitor tag (see `livestage.identity`): banning the author of a message
bans the visitor behind that identity, so a new token for the same visitor is banned too. The
edge writes bans (operator routes) and refuses tokens and chat from banned visitors; moderation
also rejects their messages, which covers anything already queued.

Layout: one Redis hash per room, `livestage:bans:<room>`, field = visitor tag, value = the ban as
JSON. A temporary ban past its `expires_at` counts as lifted and is deleted when next read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from livestage.schemas import now_ms
from livestage.subjects import check_room


@dataclass(frozen=True)
class Ban:
    visitor_tag: str
    identity: str = ""  # the identity the operator pointed at, if any (for the record)
    reason: str = ""
    created_at: int = 0
    expires_at: int = 0  # epoch ms; 0 = permanent

    def active(self, at_ms: int) -> bool:
        return self.expires_at == 0 or self.expires_at > at_ms

    def to_wire(self) -> dict[str, object]:
        """camelCase, as the operator API shows it."""
        return {
            "visitorTag": self.visitor_tag,
            "identity": self.identity,
            "reason": self.reason,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
        }


def _key(room: str) -> str:
    return f"livestage:bans:{check_room(room)}"


class BanStore:
    """Read and write the bans of rooms in one Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def ban(self, room: str, ban: Ban) -> None:
        await self.redis.hset(_key(room), ban.visitor_tag, json.dumps(asdict(ban)))

    async def unban(self, room: str, visitor_tag: str) -> bool:
        """Lift a ban; False when there was none."""
        return bool(await self.redis.hdel(_key(room), visitor_tag))

    async def get(self, room: str, visitor_tag: str) -> Ban | None:
        """The active ban of this visitor, or None."""
        raw = await self.redis.hget(_key(room), visitor_tag)
        if raw is None:
            return None
        ban = Ban(**json.loads(raw))
        if not ban.active(now_ms()):
            await self.redis.hdel(_key(room), visitor_tag)
            return None
        return ban

    async def list(self, room: str) -> list[Ban]:
        """Every active ban of the room, newest first."""
        now = now_ms()
        bans = [Ban(**json.loads(raw)) for raw in (await self.redis.hgetall(_key(room))).values()]
        return sorted(
            (ban for ban in bans if ban.active(now)), key=lambda ban: ban.created_at, reverse=True
        )
