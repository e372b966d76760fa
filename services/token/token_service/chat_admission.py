"""A chat POST's Redis work in one round trip, shared by the POSTs in flight at the same time.

Per chat POST the edge reads the visitor's ban and their network's ban, notes the network the
visitor came from, and counts both chat limits (visitor, then network): two round trips before.
`CHAT_ADMISSION` does it all in one Lua call. When either ban field is set it counts nothing (a
banned visitor uses up no limit) and the edge decides as before: `BanStore` (an expired ban is
lifted, a network ban checked against its networks), then the limits.

`BatchedScript` sends the calls of one script: a call made while none is in flight goes at once;
the calls made while one is in flight go together, one pipeline, when it returns. A lone POST
waits for nothing; a busy edge makes one round trip for many POSTs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from livestage.bans import ban_keys

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

Call = tuple[Sequence[str], Sequence[Any], "asyncio.Future[Any]"]


class BatchedScript:
    """Calls of one Lua script, the ones made while a round trip is in flight sent together."""

    def __init__(self, redis: Redis, script: str) -> None:
        self._redis = redis
        self._script = redis.register_script(script)
        self._waiting: list[Call] = []
        self._in_flight = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.round_trips = 0

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self._in_flight:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append((keys, args, future))
            return await future
        self._in_flight = True
        self.round_trips += 1
        try:
            return await self._script(keys=keys, args=args)  # loads the script when needed
        finally:
            self._next()

    def _next(self) -> None:
        """Send what waited during the last round trip, or note that none is in flight."""
        if not self._waiting:
            self._in_flight = False
            return
        batch, self._waiting = self._waiting, []
        task = asyncio.create_task(self._send(batch), name="chat admission batch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[Call]) -> None:
        try:
            results = await self._pipelined(batch)
            if any(isinstance(result, NoScriptError) for result in results):
                await self._redis.script_load(self._script.script)  # Redis lost its scripts
                results = await self._pipelined(batch)
        except Exception as error:  # noqa: BLE001 - every caller gets it (a RedisError: 503)
            results = [error] * len(batch)
        finally:
            self._next()
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():  # its request was cancelled (the client went away)
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _pipelined(self, batch: list[Call]) -> list[Any]:
        self.round_trips += 1
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
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
