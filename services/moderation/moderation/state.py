"""What moderation remembers in Redis: decided message ids, each visitor's recent messages,
strikes and mutes. Bans are read through `livestage.bans.BanStore` (the edge writes them).

Keys (all per room; `<author>` is the visitor tag of a viewer identity, so every tab and token
of one visitor shares them, or the identity itself for anything else: a YouTube or Twitch chat
author, `twitch:<user id>`, whose messages skip the edge's per-visitor limits, is held to these
per platform user):

    livestage:moderation:decided:<room>:<message id>  the verdict, JSON (`Recorded`); expires
                                                      after MODERATION_DECIDED_TTL_S
    livestage:moderation:recent:<room>:<author>       sorted set "<id>:<fingerprint>" by createdAt
    livestage:moderation:strikes:<room>:<author>      sorted set of message ids by createdAt
    livestage:moderation:mute:<room>:<author>         muted-until (epoch ms), expiring then
    livestage:moderation:room:<room>:<window>         the room's places in one window of
    livestage:moderation:room:<room>:<n>ms:<window>   createdAt (`checks/room_rate.py`'s
                                                      `RoomCap`: the deployment's second, the
                                                      first form, or a show's minute, n=60000):
                                                      field `#` counts them, each message id
                                                      within the cap keeps its place; expires
                                                      after an hour

`StateStore.decide` judges a message and records its verdict with the state it adds as one
optimistic transaction, in two round trips: one script reads the message's verdict key and its
author's keys (and ban) with a digest of what it read (`READ_STATES`), the caller judges (the
pure checks), and a second script (`WRITE_VERDICTS`) writes only if every digest still matches;
when another instance (or a concurrent handler) changed any of that state meanwhile, nothing is
written and the message is judged again on the new state. So of two messages decided at the
same time from one visitor, one is judged knowing the other: two copies of a line are never both
approved, and a burst never gets more than the flood limit through. The checks stay pure and
the only source of the rules.

The verdict is recorded before it is published, marked `published` after. A redelivery finds the
record: published, it is acknowledged without a second verdict; not yet (a crash in between),
the recorded verdict is published, the same one, under the same JetStream de-duplication id.
A redelivery never adds to its visitor's state again.

`StateStore.decide_batch` does the same for a batch of messages (what one fetch brought): one
read of every message's state, one judgement of them all in order (the caller counts the
batch's earlier messages into each later one's state, `with_earlier`), and one write of every
verdict, which also takes the room places of the approved ones (`RoomClaim`: in batch order; a
place past the cap records the busy verdict instead); when any state changed meanwhile the
whole batch is judged again. So a batch costs two round trips, read and write; its verdicts'
`published` marks ride on the next batch's read (`published_soon`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis

from livestage.bans import Ban, BanStore
from livestage.identity import ban_key_of, visitor_tag_of
from livestage.schemas import ChatMessage, now_ms
from moderation.checks import RecentMessage
from moderation.checks.room_rate import WINDOW_MS, RoomCap
from moderation.pipeline import Decision, StrikeOutcome
from moderation.settings import ModerationSettings

log = logging.getLogger(__name__)

PREFIX = "livestage:moderation"
MAX_RECENT = 100
"""Recent messages kept per visitor (more than any flood limit needs)."""
ROOM_PLACES_TTL_MS = 3_600_000
"""How long a window's places are kept: longer than any redelivery of a message of that window
takes, so a late message of a busy window still finds the places given out."""
MARK_PUBLISHED_WITHIN_S = 0.1
"""How long a verdict's `published` mark waits for the next batch's read to carry it before
it is written on its own (`StateStore.published_soon`)."""
MAX_DECIDE_ATTEMPTS = 50
"""Judgements of one message before `decide` gives up (each retry means another message of the
same visitor was recorded meanwhile, so this is only reached under a flood of one visitor far
beyond what the edge lets through; the delivery is then retried later)."""

# Atomic, so two instances never hand out the same place; a message that already has a place
# (a redelivery) gets it back. Only places within the cap are remembered by id: beyond it every
# place means "rejected", so a flood costs one counter, not one field per message.
CLAIM_FUNCTION = """
local function claim(key, message_id, limit, keep_ms)
  local place = redis.call('HGET', key, message_id)
  if place then return tonumber(place) end
  place = redis.call('HINCRBY', key, '#', 1)
  if place <= limit then redis.call('HSET', key, message_id, place) end
  redis.call('PEXPIRE', key, keep_ms)
  return place
end
"""
CLAIM_ROOM_PLACE = CLAIM_FUNCTION + "return claim(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3])"

# A message's state as the checks read it (keys from `k`: decided, recent, strikes, mute;
# arguments from `a`: the recent window's bounds, the strike window's), and its digest: what
# the write below compares to know that nothing it was judged on changed meanwhile.
STATE_FUNCTIONS = """
local function state(k, a)
  return {
    redis.call('GET', KEYS[k]),
    redis.call('ZRANGEBYSCORE', KEYS[k + 1], ARGV[a], ARGV[a + 1], 'WITHSCORES'),
    redis.call('ZCOUNT', KEYS[k + 2], ARGV[a + 2], ARGV[a + 3]),
    redis.call('GET', KEYS[k + 3]),
  }
end
local function digest(read)
  return redis.sha1hex(cjson.encode(read))
end
"""
# Verdicts marked published (`StateStore.published_soon`: first ARGV the count m, then m keys
# and m records), then every message's state, its digest and its author's ban
# (`StateStore.load_many`). Per message, keys: `state`'s and the room's bans; arguments:
# `state`'s and the ban's visitor tag ("": none).
READ_STATES = (
    STATE_FUNCTIONS
    + """
local m = tonumber(ARGV[1])
for j = 1, m do
  redis.call('SET', KEYS[j], ARGV[j + 1], 'XX', 'KEEPTTL')
end
local out = {}
for i = 0, (#KEYS - m) / 5 - 1 do
  local k, a = m + 5 * i + 1, m + 1 + 5 * i + 1
  local read = state(k, a)
  read[5] = digest(read)
  read[6] = ARGV[a + 4] ~= '' and redis.call('HGET', KEYS[k + 4], ARGV[a + 4])
  out[i + 1] = read
end
return out
"""
)
# The batch's verdicts, recorded only if no message's state changed since it was read (its
# digest): else {0} and nothing written (`StateStore.decide_batch` judges the batch again).
# Per message, keys: decided, recent, strikes, mute, the room's places (any key when it claims
# none); arguments: the 4 window bounds of `state`, its digest, the verdict record, the record
# if its place is past the cap, the cap (0: no place), the places' expiry, the message id, the
# recent entry, createdAt, the record's TTL (s), the recent set's trim score and expiry, a
# strike (1/0), the strikes' trim score and expiry, muted-until (0: none) and the mute's expiry.
# Returns {1, per message 1 if its place was past the cap (its busy record written), else 0}:
# the cap's rule is `room_rate`'s (`RoomRate.check`).
WRITE_VERDICTS = (
    CLAIM_FUNCTION
    + STATE_FUNCTIONS
    + """
local K, A = 5, 20
local n = #KEYS / K
for i = 0, n - 1 do
  if digest(state(K * i + 1, A * i + 1)) ~= ARGV[A * i + 5] then return {0} end
end
local out = {1}
for i = 0, n - 1 do
  local k, a = K * i + 1, A * i + 1
  local record, busy, limit = ARGV[a + 5], 0, tonumber(ARGV[a + 7])
  if limit > 0 and claim(KEYS[k + 4], ARGV[a + 9], limit, ARGV[a + 8]) > limit then
    record, busy = ARGV[a + 6], 1
  end
  redis.call('SET', KEYS[k], record, 'EX', ARGV[a + 12])
  redis.call('ZADD', KEYS[k + 1], ARGV[a + 11], ARGV[a + 10])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', ARGV[a + 13])
  redis.call('ZREMRANGEBYRANK', KEYS[k + 1], 0, -(MAX_RECENT + 1))
  redis.call('PEXPIRE', KEYS[k + 1], ARGV[a + 14])
  if ARGV[a + 15] == '1' then
    redis.call('ZADD', KEYS[k + 2], ARGV[a + 11], ARGV[a + 9])
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', ARGV[a + 16])
    redis.call('PEXPIRE', KEYS[k + 2], ARGV[a + 17])
  end
  if ARGV[a + 18] ~= '0' then
    redis.call('SET', KEYS[k + 3], ARGV[a + 18], 'PX', ARGV[a + 19])
    redis.call('DEL', KEYS[k + 2])
  end
  out[i + 2] = busy
end
return out
""".replace("MAX_RECENT", str(MAX_RECENT))
)


def author_key(identity: str) -> str:
    """Whose strikes, mutes and recent messages these are: the visitor, else the identity."""
    return visitor_tag_of(identity) or identity


def decided_key(room: str, message_id: str) -> str:
    return f"{PREFIX}:decided:{room}:{message_id}"


def recent_key(room: str, author: str) -> str:
    return f"{PREFIX}:recent:{room}:{author}"


def strikes_key(room: str, author: str) -> str:
    return f"{PREFIX}:strikes:{room}:{author}"


def mute_key(room: str, author: str) -> str:
    return f"{PREFIX}:mute:{room}:{author}"


def room_places_key(room: str, cap: RoomCap, window: int) -> str:
    """The places of `window` (of `cap`'s length); the deployment's second keeps its old key."""
    if cap.window_ms == WINDOW_MS:
        return f"{PREFIX}:room:{room}:{window}"
    return f"{PREFIX}:room:{room}:{cap.window_ms}ms:{window}"


@dataclass(frozen=True)
class Recorded:
    """The verdict recorded for one message id (stored as JSON under its `decided_key`)."""

    verdict: str
    checks: list[str]
    reason: str
    decided_at: int
    instance: str
    published: bool = False
    """Set once the verdict is on `chat.approved`/`chat.rejected`."""

    @property
    def approved(self) -> bool:
        return self.verdict == "approved"

    def to_json(self) -> str:
        return json.dumps(
            {
                "verdict": self.verdict,
                "checks": self.checks,
                "reason": self.reason,
                "decidedAt": self.decided_at,
                "instance": self.instance,
                "published": self.published,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Recorded:
        fields = json.loads(raw)
        return cls(
            verdict=fields["verdict"],
            checks=list(fields["checks"]),
            reason=fields["reason"],
            decided_at=int(fields["decidedAt"]),
            instance=fields["instance"],
            # Records without the flag were written after publishing (before it existed).
            published=bool(fields.get("published", True)),
        )


@dataclass(frozen=True)
class LoadedState:
    decided: Recorded | None
    """The verdict already recorded for this message id, if any."""
    recent: tuple[RecentMessage, ...] = ()
    strikes: int = 0
    muted_until_ms: int = 0
    ban: Ban | None = None


Judgement = tuple[Decision, StrikeOutcome]
Judge = Callable[[LoadedState], Awaitable[Judgement]]
"""Judges a message on its author's state (`StateStore.decide` may call it more than once)."""


@dataclass(frozen=True)
class RoomClaim:
    """A message every other check approved asks for a place in its room's window (`cap`);
    past the cap its verdict is `busy` instead (`room_rate`'s, no strike)."""

    cap: RoomCap
    busy: Decision


BatchJudgement = tuple[Decision, StrikeOutcome, RoomClaim | None]
BatchJudge = Callable[[list[LoadedState]], Awaitable[list[BatchJudgement | None]]]
"""Judges a batch, in order, on each message's state as loaded (None where already decided);
the judge counts the batch's earlier messages itself (`with_earlier`); an approved message
under a room cap comes with its `RoomClaim` (the place is taken as its verdict is recorded)."""


@dataclass(frozen=True)
class Judged:
    """What a judged message adds to its author's state (for later messages of one batch)."""

    recent: RecentMessage
    strike: bool
    mute_until_ms: int


def with_earlier(
    state: LoadedState,
    message: ChatMessage,
    earlier: Sequence[Judged],
    *,
    recent_window_ms: int,
    strike_window_ms: int,
) -> LoadedState:
    """`state` (as loaded before the batch) plus what the batch's `earlier` messages of the
    same author and room add, exactly as reading it back after their writes would find it
    (`StateStore._write`, `StateStore.load`): their recent entries within the window, their
    strikes (a mute clears the strikes before it), their mutes."""
    if not earlier:
        return state
    at = message.created_at
    recent = [
        judged.recent
        for judged in earlier
        if judged.recent.message_id != message.id
        and abs(judged.recent.created_at - at) <= recent_window_ms
    ]
    strikes = state.strikes
    for judged in earlier:
        if judged.mute_until_ms:
            strikes = 0  # the mute deleted the strikes key
        elif judged.strike and at - strike_window_ms <= judged.recent.created_at <= at:
            strikes += 1
    muted = max([state.muted_until_ms, *(judged.mute_until_ms for judged in earlier)])
    return replace(state, recent=(*state.recent, *recent), strikes=strikes, muted_until_ms=muted)


class DecideContended(RuntimeError):
    """`decide` was outrun `MAX_DECIDE_ATTEMPTS` times; the delivery is retried later."""


class StateStore:
    def __init__(self, redis: Redis, settings: ModerationSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.bans = BanStore(redis)
        self.recent_window_ms = int(settings.state_window_s * 1000)
        self.strike_window_ms = int(settings.strike_window_s * 1000)
        self._claim_room_place = redis.register_script(CLAIM_ROOM_PLACE)
        self._read_states = redis.register_script(READ_STATES)
        self._write_verdicts = redis.register_script(WRITE_VERDICTS)
        self._unmarked: list[tuple[str, str]] = []
        """Published marks (record key, record) for the next read to write."""
        self._marker: asyncio.Task[None] | None = None

    async def decide(
        self, message: ChatMessage, judge: Judge, *, with_ban: bool, instance: str
    ) -> tuple[Recorded, bool]:
        """The verdict of `message` and whether it is new: the one recorded for its id, or
        `judge`'s, recorded with the state it adds in one transaction (see the module's doc).

        `judge` runs again whenever the author's state changed before the record was written."""

        async def judge_one(states: list[LoadedState]) -> list[BatchJudgement | None]:
            if states[0].decided is not None:
                return [None]
            decision, outcome = await judge(states[0])
            return [(decision, outcome, None)]

        (decided,) = await self.decide_batch(
            [message], judge_one, with_ban=with_ban, instance=instance
        )
        return decided

    async def decide_batch(
        self, messages: Sequence[ChatMessage], judge: BatchJudge, *, with_ban: bool, instance: str
    ) -> list[tuple[Recorded, bool]]:
        """`decide` for several messages (distinct ids) at once: per message its verdict and
        whether it is new. One read of every state (with its digest), `judge` over them all,
        one script recording every verdict (and taking the room places) only if none of the
        states it was judged on changed meanwhile; else all judged again."""
        for _ in range(MAX_DECIDE_ATTEMPTS):
            states, digests = await self._load(messages, with_ban=with_ban)
            judgements = await judge(states)
            keys: list[str] = []
            args: list[Any] = []
            fresh: list[tuple[Recorded, Recorded | None]] = []
            for message, state, digest, judgement in zip(
                messages, states, digests, judgements, strict=True
            ):
                if state.decided is not None or judgement is None:
                    assert state.decided is not None, "the judge skipped an undecided message"
                    continue
                decision, _, claim = judgement
                record = self._record(decision, instance)
                busy = None if claim is None else self._record(claim.busy, instance)
                self._queue_write(keys, args, message, digest, (record, busy), judgement)
                fresh.append((record, busy))
            if not fresh:
                return [(state.decided, False) for state in states if state.decided]
            written: list[Any] = await self._write_verdicts(keys=keys, args=args)
            if not int(written[0]):
                continue  # a state changed under the judgement: judge again
            recorded = iter(
                busy if int(past_cap) and busy else record
                for (record, busy), past_cap in zip(fresh, written[1:], strict=True)
            )
            return [
                (state.decided, False) if state.decided else (next(recorded), True)
                for state in states
            ]
        raise DecideContended(
            f"{len(messages)} message(s) from {messages[0].id}: their authors' state changed "
            f"under each of {MAX_DECIDE_ATTEMPTS} judgements; leaving them for redelivery"
        )

    @staticmethod
    def _record(decision: Decision, instance: str) -> Recorded:
        return Recorded(
            verdict=decision.verdict,
            checks=decision.checks,
            reason=decision.reason,
            decided_at=now_ms(),
            instance=instance,
        )

    async def mark_published(self, message: ChatMessage, record: Recorded) -> None:
        """Note that the recorded verdict was published (keeping the record's expiry)."""
        await self.mark_published_many([(message, record)])

    async def mark_published_many(self, published: Sequence[tuple[ChatMessage, Recorded]]) -> None:
        """`mark_published` for several, in one round trip."""
        if not published:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for message, record in published:
                pipe.set(
                    decided_key(message.room, message.id),
                    replace(record, published=True).to_json(),
                    xx=True,
                    keepttl=True,
                )
            await pipe.execute()

    def published_soon(self, published: Sequence[tuple[ChatMessage, Recorded]]) -> None:
        """`mark_published_many`, written by the next read (`load_many`, `decide_batch`: one
        round trip fewer per batch), or on its own within `MARK_PUBLISHED_WITHIN_S` when no
        read comes (`flush_published`). Until then a redelivery publishes the verdict again,
        under the same de-duplication id, so JetStream keeps one."""
        self._unmarked += [
            (decided_key(m.room, m.id), replace(r, published=True).to_json()) for m, r in published
        ]
        if self._unmarked and (self._marker is None or self._marker.done()):
            self._marker = asyncio.create_task(self._flush_later(), name="mark-published")

    async def _flush_later(self) -> None:
        await asyncio.sleep(MARK_PUBLISHED_WITHIN_S)
        try:
            await self.flush_published()
        except Exception as error:  # noqa: BLE001 - Redis away: the next read carries them
            log.warning("published marks not written (%r); the next read carries them", error)

    async def flush_published(self) -> None:
        """Write the published marks no read has carried yet (also before stopping)."""
        marks, self._unmarked = self._unmarked, []
        if not marks:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, record in marks:
                    pipe.set(key, record, xx=True, keepttl=True)
                await pipe.execute()
        except BaseException:
            self._unmarked[:0] = marks
            raise

    async def load(self, message: ChatMessage, *, with_ban: bool) -> LoadedState:
        (state,) = await self.load_many([message], with_ban=with_ban)
        return state

    async def load_many(
        self, messages: Sequence[ChatMessage], *, with_ban: bool
    ) -> list[LoadedState]:
        """Each message's state as stored, with its author's ban (when `with_ban`), read in one
        round trip (`READ_STATES`; `BanStore.active` clears an expired ban)."""
        states, _ = await self._load(messages, with_ban=with_ban)
        return states

    async def _load(
        self, messages: Sequence[ChatMessage], *, with_ban: bool
    ) -> tuple[list[LoadedState], list[bytes]]:
        """`load_many`, and each state's digest as read (for `WRITE_VERDICTS`)."""
        marks, self._unmarked = self._unmarked, []
        keys: list[str] = [key for key, _ in marks]
        args: list[Any] = [len(marks), *(record for _, record in marks)]
        banned_as = []
        for message in messages:
            tag = ban_key_of(message.author_identity) if with_ban else None
            banned_as.append(tag)
            keys += [*self._state_keys(message), BanStore.key(message.room)]
            args += [*self._bounds(message), tag or ""]
        try:
            reads: list[Any] = await self._read_states(keys=keys, args=args)
        except BaseException:
            self._unmarked[:0] = marks
            raise
        states = [
            self._state(
                message, read, await self.bans.active(message.room, tag, read[5]) if tag else None
            )
            for message, read, tag in zip(messages, reads, banned_as, strict=True)
        ]
        return states, [read[4] for read in reads]

    @staticmethod
    def _state(message: ChatMessage, read: list[Any], ban: Ban | None) -> LoadedState:
        decided_raw, recent_raw, strikes, muted_raw = read[:4]
        if decided_raw is not None:
            return LoadedState(decided=Recorded.from_json(decided_raw))
        recent = []
        for n in range(0, len(recent_raw), 2):  # member, score, member, score...
            member = recent_raw[n]
            text = member.decode() if isinstance(member, bytes) else str(member)
            message_id, _, fingerprint = text.partition(":")
            if message_id != message.id:
                recent.append(RecentMessage(message_id, int(float(recent_raw[n + 1])), fingerprint))
        return LoadedState(
            decided=None,
            recent=tuple(recent),
            strikes=int(strikes),
            muted_until_ms=int(muted_raw) if muted_raw else 0,
            ban=ban,
        )

    def _bounds(self, message: ChatMessage) -> list[int]:
        """The recent window's bounds, the strike window's (`STATE_FUNCTIONS`'s arguments).
        Recent: both sides of createdAt, as instances judge at the same time, so a message
        created a moment later may have been recorded first (see `checks/flood.py`)."""
        at = message.created_at
        return [
            at - self.recent_window_ms,
            at + self.recent_window_ms,
            at - self.strike_window_ms,
            at,
        ]

    @staticmethod
    def _state_keys(message: ChatMessage) -> list[str]:
        room, author = message.room, author_key(message.author_identity)
        return [
            decided_key(room, message.id),
            recent_key(room, author),
            strikes_key(room, author),
            mute_key(room, author),
        ]

    async def claim_room_place(self, message: ChatMessage, cap: RoomCap) -> int:
        """This message's place (1-based) among the room's approved messages in its window of
        `createdAt` (`cap`'s); the same place again for the same message id (if within the
        cap's limit). `decide_batch` takes the places of its approved messages itself."""
        (place,) = await self.claim_room_places([(message, cap)])
        return place

    async def claim_room_places(self, claims: Sequence[tuple[ChatMessage, RoomCap]]) -> list[int]:
        """`claim_room_place` for several, each under its room's cap, in order, in one round
        trip."""
        if not claims:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for message, cap in claims:
                await self._claim_room_place(
                    keys=[self._places_key(message, cap)],
                    args=[message.id, cap.limit, self._places_keep_ms(cap)],
                    client=pipe,
                )
            places: list[Any] = await pipe.execute()
        return [int(place) for place in places]

    @staticmethod
    def _places_key(message: ChatMessage, cap: RoomCap) -> str:
        return room_places_key(message.room, cap, cap.window(message.created_at))

    @staticmethod
    def _places_keep_ms(cap: RoomCap) -> int:
        return max(ROOM_PLACES_TTL_MS, 2 * cap.window_ms)

    def _queue_write(
        self,
        keys: list[str],
        args: list[Any],
        message: ChatMessage,
        digest: bytes,
        records: tuple[Recorded, Recorded | None],
        judgement: BatchJudgement,
    ) -> None:
        """Add the verdict record (or, past the room cap, the busy one) and the state this
        message adds to `WRITE_VERDICTS`' keys and arguments (in its order)."""
        record, busy = records
        decision, outcome, claim = judgement
        at = message.created_at
        state_keys = self._state_keys(message)
        mute_left_ms = outcome.mute_until_ms - now_ms()
        muted = bool(outcome.mute_until_ms and mute_left_ms > 0)
        keys += [*state_keys, self._places_key(message, claim.cap) if claim else state_keys[1]]
        args += [
            *self._bounds(message),
            digest,
            record.to_json(),
            busy.to_json() if busy else "",
            claim.cap.limit if claim else 0,
            self._places_keep_ms(claim.cap) if claim else 0,
            message.id,
            f"{message.id}:{decision.fingerprint}",
            at,
            self.settings.decided_ttl_s,
            f"({at - 2 * self.recent_window_ms}",
            2 * self.recent_window_ms + 60_000,
            1 if outcome.add_strike else 0,
            f"({at - self.strike_window_ms}",
            self.strike_window_ms + 60_000,
            outcome.mute_until_ms if muted else 0,
            mute_left_ms if muted else 0,
        ]
