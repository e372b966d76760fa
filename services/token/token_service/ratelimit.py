"""Rate limits kept in Redis (shared by every edge replica), with `limits` doing the counting.

Every bucket is named `<limit>/<room>/<key>`: the room keeps edges of different rooms (and the
tests' edges, one room each) apart, the key is a visitor tag or a client network. A request is
counted against several buckets in order (visitor first, then network) and stops at the first
that is full, so a refused request uses up nothing in the buckets after it. Every 429 adds one
to the `livestage.edge.rate_limited` counter with the limit's name.

In Redis, the buckets of one request are counted in one round trip: `HIT_IN_ORDER`, the `limits`
moving-window script (`acquire_moving_window.lua`) run over each bucket in turn inside one Lua
call, on the keys `limits` itself uses (so its window stats, and Retry-After, read the same
lists). A chat POST counts two buckets: that was two round trips.

`RateLimiter.in_memory` counts in the process instead, for limits that guard one replica's own
resources (its `/media` streams, its status page) and must keep working while Redis is down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from fastapi import HTTPException, status
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from opentelemetry.metrics import Counter
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from livestage import metrics

KEY_PREFIX = "livestage-limits"

HIT_IN_ORDER_FUNCTION = """
-- keys: the buckets, in order; now: epoch seconds; limits: limit and window (s) per bucket.
-- Returns 0 when every bucket took the hit, else the 1-based index of the first full one (the
-- buckets after it are not touched).
local function hit_in_order(keys, now, limits)
    for i, key in ipairs(keys) do
        local limit = tonumber(limits[2 * i - 1])
        local expiry = tonumber(limits[2 * i])
        local entry = redis.call('lindex', key, limit - 1)
        if entry and tonumber(entry) >= now - expiry then
            return i
        end
        redis.call('lpush', key, now)
        redis.call('ltrim', key, 0, limit - 1)
        redis.call('expire', key, expiry)
    end
    return 0
end
"""

HIT_IN_ORDER = (
    HIT_IN_ORDER_FUNCTION
    + "-- KEYS: the buckets; ARGV: now, then limit and window per bucket\n"
    + "return hit_in_order(KEYS, tonumber(ARGV[1]), {unpack(ARGV, 2)})\n"
)


@dataclass(frozen=True)
class Limit:
    """A named limit such as ("chat-visitor", "6/10seconds")."""

    name: str
    item: RateLimitItem

    @classmethod
    def parse(cls, name: str, spec: str) -> Limit:
        return cls(name, parse(spec))


class RateLimiter:
    def __init__(
        self,
        storage: Storage,
        namespace: str,
        *,
        limited: Counter | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.namespace = namespace
        self.limited = limited or metrics.counter(metrics.RATE_LIMITED)
        # with the storage's Redis: every bucket of a request in one round trip
        self._hit_in_order: AsyncScript | None = (
            None if redis is None else redis.register_script(HIT_IN_ORDER)
        )

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
            key_prefix=KEY_PREFIX,
            # documented by `limits`, though its options are typed as scalars
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        return cls(storage, namespace, limited=limited, redis=redis)

    @classmethod
    def in_memory(cls, namespace: str, *, limited: Counter | None = None) -> RateLimiter:
        """Counts in this process only: each replica keeps its own buckets."""
        return cls(MemoryStorage(), namespace, limited=limited)

    async def check(self, limit: Limit, key: str) -> None:
        """Count one hit for `key`; raise 429 with Retry-After when the limit is exceeded."""
        await self.check_all([(limit, key)])

    async def check_all(self, checks: Sequence[tuple[Limit, str]]) -> None:
        """Count one hit in each bucket, in order; the first full one raises 429."""
        full = await self._first_full(checks)
        if full is not None:
            await self.refuse(*full)

    def bucket_keys(self, checks: Sequence[tuple[Limit, str]]) -> tuple[list[str], list[float]]:
        """The Redis keys and `HIT_IN_ORDER`'s limit and window arguments of `checks` (without
        the leading `now`), for a script that counts them itself."""
        keys = [
            f"{KEY_PREFIX}:{limit.item.key_for(limit.name, self.namespace, key)}"
            for limit, key in checks
        ]
        args: list[float] = []
        for limit, _ in checks:
            args += [limit.item.amount, limit.item.get_expiry()]
        return keys, args

    async def refuse(self, limit: Limit, key: str) -> NoReturn:
        """The 429 of a full bucket, with Retry-After from its window."""
        stats = await self.limiter.get_window_stats(limit.item, limit.name, self.namespace, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        self.limited.add(1, {"limit": limit.name})
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit '{limit.name}' ({limit.item}) exceeded; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    async def _first_full(self, checks: Sequence[tuple[Limit, str]]) -> tuple[Limit, str] | None:
        if self._hit_in_order is None:
            for limit, key in checks:
                if not await self.limiter.hit(limit.item, limit.name, self.namespace, key):
                    return limit, key
            return None
        keys, args = self.bucket_keys(checks)
        full = int(await self._hit_in_order(keys=keys, args=[time.time(), *args]))
        return None if full == 0 else checks[full - 1]
