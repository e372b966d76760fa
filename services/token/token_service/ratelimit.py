"""Rate limits kept in Redis (shared by every edge replica), with `limits` doing the counting."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fastapi import HTTPException, status
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from livestage.kv import redis_options


@dataclass(frozen=True)
class Limit:
    """A named limit such as ("chat", "6/10seconds")."""

    name: str
    item: RateLimitItem

    @classmethod
    def parse(cls, name: str, spec: str) -> Limit:
        return cls(name, parse(spec))


class RateLimiter:
    def __init__(self, redis_url: str) -> None:
        uri = redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1
        )
        self.storage = RedisStorage(
            uri, implementation="redispy", key_prefix="livestage-limits", **redis_options()
        )
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def check(self, limit: Limit, key: str) -> None:
        """Count one hit for `key`; raise 429 with Retry-After when the limit is exceeded."""
        if await self.limiter.hit(limit.item, limit.name, key):
            return
        stats = await self.limiter.get_window_stats(limit.item, limit.name, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit '{limit.name}' ({limit.item}) exceeded; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
