"""Operator console sessions in Redis: the browser holds a random id, never the secret.

    sessions = OperatorSessions(redis, room, lifetime_s=7200)
    session = await sessions.create()           # Session(id="...", expires_at_ms=...)
    await sessions.get(session.id)              # the same, or None once expired or revoked
    await sessions.revoke(session.id)

Layout: `livestage:operator-session:{<room>}:<sha256 of the id>` → the expiry in epoch ms,
with the same TTL, so every edge replica of the room accepts the session and a sign-out on any
of them revokes it everywhere. Only a hash of the id is stored: whoever reads Redis cannot
replay a cookie from it. Ids are 256 random bits (`secrets.token_urlsafe(32)`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from livestage.schemas import now_ms
from livestage.subjects import check_room

SESSION_ID_CHARS = 43
"""`secrets.token_urlsafe(32)` is 43 characters; anything else is not one of ours."""


@dataclass(frozen=True)
class Session:
    id: str
    expires_at_ms: int


def session_key(room: str, session_id: str) -> str:
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return f"livestage:operator-session:{{{check_room(room)}}}:{digest}"


class OperatorSessions:
    def __init__(self, redis: Redis, room: str, lifetime_s: int) -> None:
        self.redis = redis
        self.room = room
        self.lifetime_s = lifetime_s

    async def create(self) -> Session:
        session = Session(secrets.token_urlsafe(32), now_ms() + self.lifetime_s * 1000)
        await self.redis.set(
            session_key(self.room, session.id), str(session.expires_at_ms), ex=self.lifetime_s
        )
        return session

    async def get(self, session_id: str) -> Session | None:
        """The session behind a cookie value, or None (unknown, expired, revoked, malformed)."""
        if len(session_id) != SESSION_ID_CHARS:
            return None
        raw = await self.redis.get(session_key(self.room, session_id))
        if raw is None:
            return None
        expires_at_ms = int(raw)
        if expires_at_ms <= now_ms():  # Redis expires keys lazily to the millisecond
            return None
        return Session(session_id, expires_at_ms)

    async def revoke(self, session_id: str) -> None:
        if len(session_id) == SESSION_ID_CHARS:
            await self.redis.delete(session_key(self.room, session_id))
