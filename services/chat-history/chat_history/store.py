"""The record of chat in Redis: per room, ordered by createdAt, idempotent by id, bounded.

Layout per room (every key expires `max_age_s` after the room's last write, so an abandoned
room leaves nothing behind):

    livestage:history:{<room>}:order     ZSET  id -> createdAt (the order; ties by id)
    livestage:history:{<room>}:messages  HASH  id -> ChatMessage JSON (wire form)
    livestage:history:{<room>}:sent      HASH  id -> epoch ms its send to the room completed
    livestage:history:{<room>}:removed   ZSET  id -> epoch ms an operator removed it (tombstones)
    livestage:history:{<room>}:stored    ZSET  id -> its place in the order of storing (`seq`)
    livestage:history:{<room>}:seq       STRING the last place given out (INCR)

`stored` is what a reconnecting page catches up with (`after`): "every message stored after the
one I hold" in the order chat-history stored (and sent) them, which createdAt is not (a host line
is dated when its speech began, a slow moderation approves late). A place is given once, when a
message is first stored; a redelivery keeps it.

Each operation is one Lua script, so it is atomic (one store call writes every message of a room
that came in the same turn of the event loop: a fetched batch): two deliveries of one message (a
redelivery racing a slow first attempt, or two instances) store it once (`HSETNX`), and a
removal that arrives before the message leaves a tombstone that keeps it out. Trimming (by count
and by age) happens in the same script as every write, and reads never return anything older
than the age limit, even for a room nobody has written to since.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage.history import history_keys
from livestage.schemas import ChatMessage, now_ms

from .decisions import StoreOutcome, cutoff_ms

log = logging.getLogger(__name__)

MARK_DELAY_S = 0.1
"""How long a sent message's mark waits for the room's next store to carry it."""

# Removes from every structure the ids of `order` older than the cutoff or beyond the count.
_TRIM = """
local function forget(ids)
  if #ids > 0 then
    redis.call('HDEL', KEYS[2], unpack(ids))
    redis.call('HDEL', KEYS[3], unpack(ids))
    redis.call('ZREM', KEYS[1], unpack(ids))
    redis.call('ZREM', KEYS[5], unpack(ids))
  end
end
local function trim(cutoff, max_count)
  forget(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff))
  local extra = redis.call('ZCARD', KEYS[1]) - max_count
  if extra > 0 then forget(redis.call('ZRANGE', KEYS[1], 0, extra - 1)) end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. cutoff)
end
local function keep_alive(ttl_ms)
  for i = 1, 6 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl_ms) end
  end
end
"""

# Marks the kept ones of `ids` sent at `now` (the sent hash lives as long as the messages).
_MARK = """
local function mark(now, ids)
  local marked = 0
  for _, id in ipairs(ids) do
    if redis.call('HEXISTS', KEYS[2], id) == 1 then
      redis.call('HSET', KEYS[3], id, now)
      marked = marked + 1
    end
  end
  if marked > 0 then redis.call('PEXPIRE', KEYS[3], redis.call('PTTL', KEYS[2])) end
  return marked
end
"""

# KEYS order messages sent removed stored seq; ARGV cutoff maxCount ttlMs nowMs nMarks, then
# nMarks ids sent earlier (marked first: `HistoryStore.mark_sent_soon`), then per message
# id createdAt json -> an outcome per message, in order. Trimmed and kept alive once per call.
_STORE = (
    _TRIM
    + _MARK
    + """
local cutoff, max_count, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local marks = tonumber(ARGV[5])
if marks > 0 then mark(ARGV[4], {unpack(ARGV, 6, 5 + marks)}) end
local first = 6 + marks
local outcomes, touched = {}, false
for i = first, #ARGV, 3 do
  local id, created = ARGV[i], tonumber(ARGV[i + 1])
  local outcome
  if redis.call('ZSCORE', KEYS[4], id) then
    outcome = 'removed'
  elseif created < cutoff then
    outcome = 'expired'
  elseif redis.call('HSETNX', KEYS[2], id, ARGV[i + 2]) == 1 then
    redis.call('ZADD', KEYS[1], created, id)
    redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[6]), id)
    outcome = 'stored'
  elseif redis.call('HEXISTS', KEYS[3], id) == 1 then
    outcome = 'delivered'
  else
    outcome = 'pending'
  end
  touched = touched or (outcome ~= 'removed' and outcome ~= 'expired')
  table.insert(outcomes, outcome)
end
if not touched then return outcomes end
trim(cutoff, max_count)
keep_alive(ttl)
for n = 1, #outcomes do
  if outcomes[n] == 'stored' and redis.call('HEXISTS', KEYS[2], ARGV[first + 3 * (n - 1)]) == 0 then
    outcomes[n] = 'trimmed'
  end
end
return outcomes
"""
)

# KEYS order messages sent removed stored seq; ARGV nowMs id... -> how many were marked
_MARK_SENT = (
    _MARK
    + """
return mark(ARGV[1], {unpack(ARGV, 2)})
"""
)

# KEYS order messages sent removed stored seq; ARGV id nowMs cutoff maxCount ttlMs
_REMOVE = (
    _TRIM
    + """
local existed = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
trim(tonumber(ARGV[3]), tonumber(ARGV[4]))
keep_alive(tonumber(ARGV[5]))
return existed
"""
)

# KEYS order messages sent removed stored seq; ARGV cutoff maxCount limit
# -> JSON of the newest `limit`
_RECENT = (
    _TRIM
    + """
trim(tonumber(ARGV[1]), tonumber(ARGV[2]))
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""
)

# KEYS as above; ARGV cutoff maxCount limit afterId -> a head, then JSON of up to `limit`
# messages: head 'more' / 'done' = those stored after `afterId` in the order of storing (more
# follow, or not); 'gap' = `afterId` is not kept (trimmed, expired, removed, or never stored
# here): the newest `limit` by createdAt instead, newest first.
_AFTER = (
    _TRIM
    + """
trim(tonumber(ARGV[1]), tonumber(ARGV[2]))
local limit = tonumber(ARGV[3])
local place = redis.call('ZSCORE', KEYS[5], ARGV[4])
local head, ids
if place then
  ids = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. place, '+inf', 'LIMIT', 0, limit + 1)
  head = 'done'
  if #ids > limit then
    head = 'more'
    table.remove(ids)
  end
else
  ids = redis.call('ZREVRANGE', KEYS[1], 0, limit - 1)
  head = 'gap'
end
if #ids == 0 then return {head} end
local out = redis.call('HMGET', KEYS[2], unpack(ids))
table.insert(out, 1, head)
return out
"""
)


def _keys(room: str) -> list[str]:
    return history_keys(room)  # one hash slot per room (cluster)


@dataclass(frozen=True)
class Page:
    """What `HistoryStore.after` found: the messages, and how they relate to the cursor."""

    messages: list[ChatMessage]
    more: bool = False
    """More were stored after the last of `messages`: ask again after it."""
    gap: bool = False
    """The cursor is not kept: `messages` are the newest instead, oldest first, and some
    between the cursor and them may be gone."""


@dataclass(frozen=True)
class Limits:
    max_messages: int
    max_age_s: int

    @property
    def ttl_ms(self) -> int:
        return self.max_age_s * 1000


class HistoryStore:
    """Chat history of every room in one Redis (see the module docstring for the layout)."""

    def __init__(self, redis: Redis, limits: Limits) -> None:
        self.redis = redis
        self.limits = limits
        self._store = redis.register_script(_STORE)
        self._waiting: dict[str, list[tuple[ChatMessage, asyncio.Future[StoreOutcome]]]] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._mark_sent = redis.register_script(_MARK_SENT)
        self._unmarked: dict[str, list[str]] = {}  # sent, to mark with the room's next call
        self._marks_due: dict[str, asyncio.TimerHandle] = {}
        self._remove = redis.register_script(_REMOVE)
        self._recent = redis.register_script(_RECENT)
        self._after = redis.register_script(_AFTER)

    async def store(self, message: ChatMessage, at_ms: int | None = None) -> StoreOutcome:
        """Write `message` once; the outcome says whether (and why not) it is new.

        Stores asked for in the same turn of the event loop (a fetch's deliveries, handled
        concurrently) go to Redis together, one script call per room (`store_many`)."""
        if at_ms is not None:
            return (await self.store_many([message], at_ms))[0]
        loop = asyncio.get_running_loop()
        waiting = self._waiting.get(message.room)
        if waiting is None:
            waiting = self._waiting[message.room] = []
            loop.call_soon(self._flush, message.room)
        outcome: asyncio.Future[StoreOutcome] = loop.create_future()
        waiting.append((message, outcome))
        return await outcome

    def _flush(self, room: str) -> None:
        waiting = self._waiting.pop(room)
        task = asyncio.create_task(self._store_waiting(waiting), name=f"store {room}")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _store_waiting(
        self, waiting: list[tuple[ChatMessage, asyncio.Future[StoreOutcome]]]
    ) -> None:
        try:
            outcomes = await self.store_many([message for message, _ in waiting])
        except Exception as error:  # each caller raises it (no ack: redelivered)
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
        else:
            for (_, future), outcome in zip(waiting, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
        finally:
            for _, future in waiting:  # cancelled (service stopping): no ack, redelivered
                if not future.done():
                    future.cancel()

    async def store_many(
        self, messages: Sequence[ChatMessage], at_ms: int | None = None
    ) -> list[StoreOutcome]:
        """Write each message (all of one room) once, in order, in one script call; an
        outcome per message, as `store` gives."""
        if not messages:
            return []
        now = now_ms() if at_ms is None else at_ms
        room = messages[0].room
        marks = self._take_marks(room)
        args: list[str | int | bytes] = [
            cutoff_ms(now, self.limits.max_age_s),
            self.limits.max_messages,
            self.limits.ttl_ms,
            now,
            len(marks),
            *marks,
        ]
        for message in messages:
            args += (message.id, message.created_at, message.to_json())
        result = await self._store(keys=_keys(room), args=args)
        return [StoreOutcome(item.decode() if isinstance(item, bytes) else item) for item in result]

    async def mark_sent(self, room: str, *message_ids: str) -> int:
        """Record that the room got these messages (a later redelivery then skips the send);
        how many of them are kept (the others were trimmed or removed meanwhile)."""
        if not message_ids:
            return 0
        return int(await self._mark_sent(keys=_keys(room), args=[now_ms(), *message_ids]))

    async def mark_sent_soon(self, room: str, *message_ids: str) -> None:
        """`mark_sent` without a Redis call of its own (returns at once): the ids ride along
        with the room's next store (the next message of a chatting room, a few ms later), or
        go alone `MARK_DELAY_S` later when none comes. The fan-out calls it once a packet was
        sent, so a message is acked before its mark is written: a redelivery that comes before
        the mark (its ack lost, a crash in between) sends it again, and viewers drop the
        duplicate id, as they do for any redelivery."""
        if not message_ids:
            return
        self._unmarked.setdefault(room, []).extend(message_ids)
        if room not in self._marks_due:
            loop = asyncio.get_running_loop()
            self._marks_due[room] = loop.call_later(MARK_DELAY_S, self._flush_marks, room)

    def _take_marks(self, room: str) -> list[str]:
        if (due := self._marks_due.pop(room, None)) is not None:
            due.cancel()
        return self._unmarked.pop(room, [])

    def _flush_marks(self, room: str) -> None:
        self._marks_due.pop(room, None)
        task = asyncio.create_task(self._mark_alone(room), name=f"mark sent {room}")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _mark_alone(self, room: str) -> None:
        marks = self._take_marks(room)
        try:
            await self.mark_sent(room, *marks)
        except RedisError as error:  # a redelivery of these sends them again: no loss
            log.warning("could not mark %d message(s) of %s sent: %r", len(marks), room, error)

    async def flush_marks(self) -> None:
        """Write every mark still waiting (on shutdown)."""
        for room in list(self._unmarked):
            await self._mark_alone(room)

    async def remove(self, room: str, message_id: str, at_ms: int | None = None) -> bool:
        """Forget a message and keep it out for good; True when it was in history."""
        now = now_ms() if at_ms is None else at_ms
        existed = await self._remove(
            keys=_keys(room),
            args=[
                message_id,
                now,
                cutoff_ms(now, self.limits.max_age_s),
                self.limits.max_messages,
                self.limits.ttl_ms,
            ],
        )
        return bool(existed)

    async def recent(self, room: str, limit: int, at_ms: int | None = None) -> list[ChatMessage]:
        """Up to `limit` newest kept messages of `room`, oldest first."""
        now = now_ms() if at_ms is None else at_ms
        raw = await self._recent(
            keys=_keys(room),
            args=[cutoff_ms(now, self.limits.max_age_s), self.limits.max_messages, limit],
        )
        messages = [ChatMessage.from_json(item) for item in raw if item is not None]
        messages.reverse()
        return messages

    async def after(self, room: str, after_id: str, limit: int, at_ms: int | None = None) -> Page:
        """Up to `limit` kept messages stored after `after_id`, in the order they were stored;
        when `after_id` is not kept, the newest `limit` (oldest first) with `gap` set."""
        now = now_ms() if at_ms is None else at_ms
        head, *raw = await self._after(
            keys=_keys(room),
            args=[cutoff_ms(now, self.limits.max_age_s), self.limits.max_messages, limit, after_id],
        )
        kind = head.decode() if isinstance(head, bytes) else str(head)
        messages = [ChatMessage.from_json(item) for item in raw if item is not None]
        if kind == "gap":
            messages.reverse()
        return Page(messages, more=kind == "more", gap=kind == "gap")

    async def ids(self, room: str) -> list[str]:
        """Every stored id of `room` in order (for checks and operators; no trimming)."""
        raw = await self.redis.zrange(_keys(room)[0], 0, -1)
        return [item.decode() if isinstance(item, bytes) else str(item) for item in raw]
