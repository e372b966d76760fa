"""Rate limits kept in Redis (shared by every edge replica), with `limits` doing the counting.

Every bucket is named `<limit>/<room>/<key>`: the room keeps edges of different rooms (and the
tests' edges, one room each) apart, the key is a visitor tag or a client network. A request is
counted against several buckets in order (visitor first, then network) and stops at the first
that is full, so a refused request uses up nothing in the buckets after it. Every 429 adds one
to the `livestage.edge.rate_limited` counter with the limit's name.

`RateLimiter.in_memory` counts in the process instead, for limits that guard one replica's own
resources (its `/media` streams, its status page) and must keep working while Redis is down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException, status
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from opentelemetry.metrics import Counter
from redis.asyncio import Redis

from livestage import metrics


@dataclass(frozen=True)
class Limit:
    """A named limit such as ("chat-visitor", "6/10seconds")."""

    name: str
    item: RateLimitItem

    @classmethod
    def parse(cls, name: str, spec: str) -> Limit:
        return cls(name, parse(spec))


class RateLimiter:
    def __init__(self, storage: Storage, namespace: str, *, limited: Counter | None = None) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.namespace = namespace
        self.limited = limited or metrics.counter(metrics.RATE_LIMITED)

    @classmethod
    def in_redis(
        cls, redis_url: str, redis: Redis, namespace: str, *, limited: Counter | None = None
    ) -> RateLimiter:
        """Counts in the Redis at `redis_url` through `redis`'s connection pool (its timeouts,
        and its wait for a free connection under a rush, instead of failing)."""
        uri = redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1
        )
        storage = RedisStorage(
            uri,
            implementation="redispy",
            key_prefix="livestage-limits",
            # documented by `limits`, though its options are typed as scalars
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        return cls(storage, namespace, limited=limited)

    @classmethod
    def in_memory(cls, namespace: str, *, limited: Counter | None = None) -> RateLimiter:
        """Counts in this process only: each replica keeps its own buckets."""
        return cls(MemoryStorage(), namespace, limited=limited)

    async def check(self, limit: Limit, key: str) -> None:
        """Count one hit for `key`; raise 429 with Retry-After when the limit is exceeded."""
        await self.check_all([(limit, key)])

    async def check_all(self, checks: Sequence[tuple[Limit, str]]) -> None:
        """Count one hit in each bucket, in order; the first full one raises 429."""
        for limit, key in checks:
            if await self.limiter.hit(limit.item, limit.name, self.namespace, key):
                continue
            stats = await self.limiter.get_window_stats(limit.item, limit.name, self.namespace, key)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            self.limited.add(1, {"limit": limit.name})
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"rate limit '{limit.name}' ({limit.item}) exceeded; "
                f"retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
