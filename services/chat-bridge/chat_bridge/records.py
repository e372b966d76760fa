"""What the bridge remembers in Redis about the platform messages it published (per room).

Small maps, each entry kept `keep_s` (BRIDGE_KEEP_S, like chat history's age limit):

| key (under `livestage:bridge:{<room>}:`) | value                                          |
|------------------------------------------|------------------------------------------------|
| `target:<chat id>`                       | the ReplyTarget of that chat message (JSON)    |
| `user:<platform>:<user id>`              | sorted set: the author's chat ids, by time     |
| `published:<chat id>`                    | set once JetStream stored the message          |
| `replied:<chat id>`                      | the claim of the one reply to that message     |

A platform message's chat id is derived from its platform id (`convert.chat_id`), so no map from
one to the other is needed. The target and the author's list are written before the message is
published: a message on the bus can always be removed with its author and answered.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from redis.asyncio import Redis

from livestage.subjects import check_room

from .source import ReplyTarget


class Records:
    def __init__(self, redis: Redis, room: str, keep_s: int) -> None:
        self.redis = redis
        self.keep_s = keep_s
        self.base = f"livestage:bridge:{{{check_room(room)}}}"  # one hash slot per room

    def _target(self, chat_id: str) -> str:
        return f"{self.base}:target:{chat_id}"

    def _user(self, platform: str, user_id: str) -> str:
        return f"{self.base}:user:{platform}:{user_id}"

    def _published(self, chat_id: str) -> str:
        return f"{self.base}:published:{chat_id}"

    async def remember(self, chat_id: str, target: ReplyTarget, at_ms: int) -> bool:
        """Record the message before it is published; True when it was published already."""
        user = self._user(target.platform, target.user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(self._published(chat_id))
            pipe.set(self._target(chat_id), json.dumps(asdict(target)), ex=self.keep_s)
            pipe.zadd(user, {chat_id: at_ms})
            pipe.zremrangebyscore(user, "-inf", at_ms - self.keep_s * 1000)
            pipe.expire(user, self.keep_s)
            published, *_ = await pipe.execute()
        return bool(published)

    async def published(self, chat_id: str) -> None:
        await self.redis.set(self._published(chat_id), b"1", ex=self.keep_s)

    async def target(self, chat_id: str) -> ReplyTarget | None:
        raw = await self.redis.get(self._target(chat_id))
        return None if raw is None else ReplyTarget(**json.loads(raw))

    async def chats_of(self, platform: str, user_id: str) -> list[str]:
        """The author's chat ids still remembered, oldest first."""
        members = await self.redis.zrange(self._user(platform, user_id), 0, -1)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def forget_chats(self, platform: str, user_id: str, chat_ids: list[str]) -> None:
        if chat_ids:
            await self.redis.zrem(self._user(platform, user_id), *chat_ids)

    async def claim_reply(self, chat_id: str) -> bool:
        """True for the one caller (of any replica, any delivery) that may answer `chat_id`."""
        claimed = await self.redis.set(
            f"{self.base}:replied:{chat_id}", b"1", nx=True, ex=self.keep_s
        )
        return bool(claimed)
