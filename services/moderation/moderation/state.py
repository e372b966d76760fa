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

`StateStore.decide` judges a message and records its verdict with the state it adds in one
optimistic transaction: it WATCHes the message's verdict key and its author's keys, reads them,
lets the caller judge (the pure checks), and writes in MULTI/EXEC; when another instance (or a
concurrent handler) changed any of those keys meanwhile, EXEC fails and the message is judged
again on the new state. So of two messages decided at the same time from one visitor, one is
judged knowing the other: two copies of a line are never both approved, and a burst never gets
more than the flood limit through. The checks stay pure and the only source of the rules.

The verdict is recorded before it is published, marked `published` after. A redelivery finds the
record: published, it is acknowledged without a second verdict; not yet (a crash in between),
the recorded verdict is published, the same one, under the same JetStream de-duplication id.
A redelivery never adds to its visitor's state again.

`StateStore.decide_batch` does the same for a batch of messages (what one fetch brought): one
pipelined read of every message's state, one judgement of them all in order (the caller
counts the batch's earlier messages into each later one's state, `with_earlier`), the room
places claimed in one pipeline, and one transaction writing every verdict; when any watched key
changed meanwhile the whole batch is judged again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline as RedisPipeline
from redis.exceptions import WatchError

from livestage.bans import Ban, BanStore
from livestage.identity import ban_key_of, visitor_tag_of
from livestage.schemas import ChatMessage, now_ms
from moderation.checks import RecentMessage
from moderation.checks.room_rate import WINDOW_MS, RoomCap
from moderation.pipeline import Decision, StrikeOutcome
from moderation.settings import ModerationSettings

PREFIX = "livestage:moderation"
MAX_RECENT = 100
"""Recent messages kept per visitor (more than any flood limit needs)."""
ROOM_PLACES_TTL_MS = 3_600_000
"""How long a window's places are kept: longer than any redelivery of a message of that window
takes, so a late message of a busy window still finds the places given out."""
MAX_DECIDE_ATTEMPTS = 50
"""Judgements of one message before `decide` gives up (each retry means another message of the
same visitor was recorded meanwhile, so this is only reached under a flood of one visitor far
beyond what the edge lets through; the delivery is then retried later)."""

# Atomic, so two instances never hand out the same place; a message that already has a place
# (a redelivery) gets it back. Only places within the cap are remembered by id: beyond it every
# place means "rejected", so a flood costs one counter, not one field per message.
CLAIM_ROOM_PLACE = """
local place = redis.call('HGET', KEYS[1], ARGV[1])
if place then return tonumber(place) end
place = redis.call('HINCRBY', KEYS[1], '#', 1)
if place <= tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], place) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return place
"""


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
BatchJudge = Callable[[list[LoadedState]], Awaitable[list[Judgement | None]]]
"""Judges a batch, in order, on each message's state as loaded (None where already decided);
the judge counts the batch's earlier messages itself (`with_earlier`)."""


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

    async def decide(
        self, message: ChatMessage, judge: Judge, *, with_ban: bool, instance: str
    ) -> tuple[Recorded, bool]:
        """The verdict of `message` and whether it is new: the one recorded for its id, or
        `judge`'s, recorded with the state it adds in one transaction (see the module's doc).

        `judge` runs again whenever the author's state changed before the record was written."""

        async def judge_one(states: list[LoadedState]) -> list[Judgement | None]:
            return [None if states[0].decided is not None else await judge(states[0])]

        (decided,) = await self.decide_batch(
            [message], judge_one, with_ban=with_ban, instance=instance
        )
        return decided

    async def decide_batch(
        self, messages: Sequence[ChatMessage], judge: BatchJudge, *, with_ban: bool, instance: str
    ) -> list[tuple[Recorded, bool]]:
        """`decide` for several messages (distinct ids) at once: per message its verdict and
        whether it is new. One pipelined read of every state, `judge` over them all, one
        transaction; all judged again when any message's watched keys changed meanwhile."""
        watched: dict[str, None] = {}
        for message in messages:
            author = author_key(message.author_identity)
            for key in (
                decided_key(message.room, message.id),
                recent_key(message.room, author),
                strikes_key(message.room, author),
                mute_key(message.room, author),
            ):
                watched[key] = None
        for _ in range(MAX_DECIDE_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(*watched)
                # Read on another connection, in one round trip: any write to a watched key
                # after the WATCH above still fails the EXEC below.
                states = await self.load_many(messages, with_ban=with_ban)
                judgements = await judge(states)
                pipe.multi()  # type: ignore[no-untyped-call]
                results: list[tuple[Recorded, bool]] = []
                for message, state, judgement in zip(messages, states, judgements, strict=True):
                    if state.decided is not None or judgement is None:
                        assert state.decided is not None, "the judge skipped an undecided message"
                        results.append((state.decided, False))
                        continue
                    decision, outcome = judgement
                    record = Recorded(
                        verdict=decision.verdict,
                        checks=decision.checks,
                        reason=decision.reason,
                        decided_at=now_ms(),
                        instance=instance,
                    )
                    self._write(pipe, message, record, decision, outcome)
                    results.append((record, True))
                if not any(fresh for _, fresh in results):
                    return results
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return results
        raise DecideContended(
            f"{len(messages)} message(s) from {messages[0].id}: their authors' state changed "
            f"under each of {MAX_DECIDE_ATTEMPTS} judgements; leaving them for redelivery"
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

    async def load(self, message: ChatMessage, *, with_ban: bool) -> LoadedState:
        (state,) = await self.load_many([message], with_ban=with_ban)
        return state

    async def load_many(
        self, messages: Sequence[ChatMessage], *, with_ban: bool
    ) -> list[LoadedState]:
        """Each message's state as stored, read in one pipelined round trip (and the bans,
        read through `BanStore`, which also clears an expired one, alongside)."""
        banned_as = [ban_key_of(m.author_identity) if with_ban else None for m in messages]
        ban_lookup = self.bans.get_many(
            [(m.room, tag) for m, tag in zip(messages, banned_as, strict=True) if tag]
        )
        reads, bans = await asyncio.gather(self._read(messages), ban_lookup)
        found = iter(bans)
        return [
            self._state(message, reads[4 * i : 4 * i + 4], next(found) if tag else None)
            for i, (message, tag) in enumerate(zip(messages, banned_as, strict=True))
        ]

    @staticmethod
    def _state(message: ChatMessage, read: list[Any], ban: Ban | None) -> LoadedState:
        decided_raw, recent_raw, strikes, muted_raw = read
        if decided_raw is not None:
            return LoadedState(decided=Recorded.from_json(decided_raw))
        recent = []
        for member, score in recent_raw:
            text = member.decode() if isinstance(member, bytes) else str(member)
            message_id, _, fingerprint = text.partition(":")
            if message_id != message.id:
                recent.append(RecentMessage(message_id, int(score), fingerprint))
        return LoadedState(
            decided=None,
            recent=tuple(recent),
            strikes=int(strikes),
            muted_until_ms=int(muted_raw) if muted_raw else 0,
            ban=ban,
        )

    async def _read(self, messages: Sequence[ChatMessage]) -> list[Any]:
        """Four results per message: its verdict, its author's recent messages, strikes, mute."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for message in messages:
                room, at = message.room, message.created_at
                author = author_key(message.author_identity)
                pipe.get(decided_key(room, message.id))
                # Both sides of createdAt: instances judge at the same time, so a message
                # created a moment later may have been recorded first (see `checks/flood.py`).
                pipe.zrangebyscore(
                    recent_key(room, author),
                    at - self.recent_window_ms,
                    at + self.recent_window_ms,
                    withscores=True,
                )
                pipe.zcount(strikes_key(room, author), at - self.strike_window_ms, at)
                pipe.get(mute_key(room, author))
            results: list[Any] = await pipe.execute()
        return results

    async def claim_room_place(self, message: ChatMessage, cap: RoomCap) -> int:
        """This message's place (1-based) among the room's approved messages in its window of
        `createdAt` (`cap`'s); the same place again for the same message id (if within the
        cap's limit)."""
        (place,) = await self.claim_room_places([(message, cap)])
        return place

    async def claim_room_places(self, claims: Sequence[tuple[ChatMessage, RoomCap]]) -> list[int]:
        """`claim_room_place` for several, each under its room's cap, in order, in one round
        trip."""
        if not claims:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for message, cap in claims:
                key = room_places_key(message.room, cap, cap.window(message.created_at))
                keep_ms = max(ROOM_PLACES_TTL_MS, 2 * cap.window_ms)
                await self._claim_room_place(
                    keys=[key], args=[message.id, cap.limit, keep_ms], client=pipe
                )
            places: list[Any] = await pipe.execute()
        return [int(place) for place in places]

    def _write(
        self,
        pipe: RedisPipeline,
        message: ChatMessage,
        record: Recorded,
        decision: Decision,
        outcome: StrikeOutcome,
    ) -> None:
        """Queue the verdict record and the state this message adds (in the caller's MULTI)."""
        room, at = message.room, message.created_at
        author = author_key(message.author_identity)
        recent = recent_key(room, author)
        pipe.set(decided_key(room, message.id), record.to_json(), ex=self.settings.decided_ttl_s)
        pipe.zadd(recent, {f"{message.id}:{decision.fingerprint}": at})
        pipe.zremrangebyscore(recent, "-inf", f"({at - 2 * self.recent_window_ms}")
        pipe.zremrangebyrank(recent, 0, -(MAX_RECENT + 1))
        pipe.pexpire(recent, 2 * self.recent_window_ms + 60_000)
        if outcome.add_strike:
            strikes = strikes_key(room, author)
            pipe.zadd(strikes, {message.id: at})
            pipe.zremrangebyscore(strikes, "-inf", f"({at - self.strike_window_ms}")
            pipe.pexpire(strikes, self.strike_window_ms + 60_000)
        mute_left_ms = outcome.mute_until_ms - now_ms()
        if outcome.mute_until_ms and mute_left_ms > 0:
            pipe.set(mute_key(room, author), str(outcome.mute_until_ms), px=mute_left_ms)
            pipe.delete(strikes_key(room, author))
