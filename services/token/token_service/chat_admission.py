"""A chat POST's Redis work in one round trip, shared by the POSTs in flight at the same time.

Per chat POST the edge reads the visitor's ban and their network's ban, notes the network the
visitor came from, and counts both chat limits (visitor, then network): two round trips before.
`CHAT_ADMISSION` does it all in one Lua call. When either ban field is set it counts nothing (a
banned visitor uses up no limit) and the edge decides as before: `BanStore` (an expired ban is
lifted, a network ban checked against its networks), then the limits.

`BatchedScript` sends the calls of one script through `InFlightBatch` (`in_flight.py`): a call
made while none is in flight goes at once; the calls made while one is in flight go together,
one pipeline, when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from livestage.bans import ban_keys

from .in_flight import InFlightBatch
from .ratelimit import HIT_IN_ORDER_FUNCTION, Limit, RateLimiter

CHAT_ADMISSION = (
    HIT_IN_ORDER_FUNCTION
    + """
-- KEYS: the room's bans, its network bans, the visitor's seen key, then the limit buckets
-- ARGV: visitor tag, network, seen TTL (s), now (epoch s), then limit and window per bucket.
-- Returns -1 when a ban field of the visitor or of their network is set (nothing counted),
-- else hit_in_order's answer.
local own = redis.call('hget', KEYS[1], ARGV[1])
local owner = redis.call('hget', KEYS[2], ARGV[2])
redis.call('set', KEYS[3], ARGV[2], 'EX', tonumber(ARGV[3]))
if own or owner then
    return -1
end
return hit_in_order({unpack(KEYS, 4)}, tonumber(ARGV[4]), {unpack(ARGV, 5)})
"""
)

Call = tuple[Sequence[str], Sequence[Any]]
"""One call of a script: its keys and arguments."""


class BatchedScript:
    """Calls of one Lua script, the ones made while a round trip is in flight sent together in
    one pipeline (`InFlightBatch`)."""

    def __init__(self, redis: Redis, script: str) -> None:
        self._redis = redis
        self._script = redis.register_script(script)
        self._batch: InFlightBatch[Call, Any] = InFlightBatch(self._send, "redis script batch")

    @property
    def round_trips(self) -> int:
        return self._batch.round_trips

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self._batch((keys, args))

    async def _send(self, calls: list[Call]) -> list[Any]:
        results = await self._pipelined(calls)
        if any(isinstance(result, NoScriptError) for result in results):
            await self._redis.script_load(self._script.script)  # first use, or Redis lost it
            results = await self._pipelined(calls)
        return results

    async def _pipelined(self, calls: list[Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))


BAN_ENTRY = -1
"""`ChatAdmission.hit`: a ban field of the visitor or their network is set; nothing counted."""


class ChatAdmission:
    """A chat line's bans and limits in `room`, one round trip (see the module)."""

    def __init__(self, redis: Redis, limiter: RateLimiter, seen_ttl_s: int) -> None:
        self._call = BatchedScript(redis, CHAT_ADMISSION)
        self._limiter = limiter
        self._seen_ttl_s = seen_ttl_s

    @property
    def round_trips(self) -> int:
        return self._call.round_trips

    async def hit(
        self, room: str, visitor_tag: str, network: str, checks: Sequence[tuple[Limit, str]]
    ) -> int:
        """Note the visitor's network and count `checks` in order: 0 when every bucket took the
        hit, else the 1-based index of the first full one, or `BAN_ENTRY`."""
        bucket_keys, bucket_args = self._limiter.bucket_keys(checks)
        return int(
            await self._call(
                [*ban_keys(room, visitor_tag), *bucket_keys],
                [visitor_tag, network, self._seen_ttl_s, time.time(), *bucket_args],
            )
        )
