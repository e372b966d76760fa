"""A room's estimated spend per UTC day, in Redis, so the daily cap holds across jobs.

    store = SpendStore(redis, clock)
    spent = await store.add("livestage", 0.0123)   # the room's total for today, after adding
    spent = await store.today("livestage")

Key `livestage:host:spend:{<room>}:<YYYY-MM-DD>` (a float, `INCRBYFLOAT`), kept two days.
Redis being away must not silence the host: callers catch `SpendUnavailable`, log it and carry
on with what the job counted itself.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage.shows import spend_day, spend_key

__all__ = ["KEY_TTL_S", "SpendStore", "SpendUnavailable", "spend_key"]

KEY_TTL_S = 2 * 24 * 3600


class SpendUnavailable(RuntimeError):
    """Redis did not answer; the spend of other jobs is unknown for now."""


class SpendStore:
    def __init__(self, redis: Redis, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.clock = clock

    def key(self, room: str) -> str:
        return spend_key(room, spend_day(self.clock()))

    async def today(self, room: str) -> float:
        try:
            value = await self.redis.get(self.key(room))
        except (RedisError, OSError) as error:
            raise SpendUnavailable(f"could not read the room's spend: {error}") from error
        return float(value) if value is not None else 0.0

    async def add(self, room: str, usd: float) -> float:
        """Add `usd` to the room's spend today and return the new total."""
        key = self.key(room)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(key, usd)
                pipe.expire(key, KEY_TTL_S)
                total, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            raise SpendUnavailable(f"could not add to the room's spend: {error}") from error
        return float(total)

    async def aclose(self) -> None:
        await self.redis.aclose()
