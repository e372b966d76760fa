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
    livestage:moderation:room:<room>:<second>         the room's places in one second of
                                                      createdAt (`checks/room_rate.py`): field
                                                      `#` counts them, each message id within
                                                      the cap keeps its place; expires after
                                                      an hour

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
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline as RedisPipeline
from redis.exceptions import WatchError

from livestage.bans import Ban, BanStore
from livestage.identity import ban_key_of, visitor_tag_of
from livestage.schemas import ChatMessage, now_ms
from moderation.checks import RecentMessage
from moderation.checks.room_rate import room_window
from moderation.pipeline import Decision, StrikeOutcome
from moderation.settings import ModerationSettings

PREFIX = "livestage:moderation"
MAX_RECENT = 100
"""Recent messages kept per visitor (more than any flood limit needs)."""
ROOM_PLACES_TTL_MS = 3_600_000
"""How long a second's places are kept: longer than any redelivery of a message of that second
takes, so a late message of a busy second still finds the places given out."""
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


def room_places_key(room: str, window: int) -> str:
    return f"{PREFIX}:room:{room}:{window}"


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


class DecideContended(RuntimeError):
    """`decide` was outrun `MAX_DECIDE_ATTEMPTS` times; the delivery is retried later."""


async def _none() -> None:
    return None


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
        author = author_key(message.author_identity)
        watched = (
            decided_key(message.room, message.id),
            recent_key(message.room, author),
            strikes_key(message.room, author),
            mute_key(message.room, author),
        )
        for _ in range(MAX_DECIDE_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(*watched)
                # Read on another connection, in one round trip: any write to a watched key
                # after the WATCH above still fails the EXEC below.
                state = await self.load(message, with_ban=with_ban)
                if state.decided is not None:
                    return state.decided, False
                decision, outcome = await judge(state)
                record = Recorded(
                    verdict=decision.verdict,
                    checks=decision.checks,
                    reason=decision.reason,
                    decided_at=now_ms(),
                    instance=instance,
                )
                pipe.multi()  # type: ignore[no-untyped-call]
                self._write(pipe, message, record, decision, outcome)
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return record, True
        raise DecideContended(
            f"message {message.id}: its author's state changed under each of "
            f"{MAX_DECIDE_ATTEMPTS} judgements; leaving it for redelivery"
        )

    async def mark_published(self, message: ChatMessage, record: Recorded) -> None:
        """Note that the recorded verdict was published (keeping the record's expiry)."""
        await self.redis.set(
            decided_key(message.room, message.id),
            replace(record, published=True).to_json(),
            xx=True,
            keepttl=True,
        )

    async def load(self, message: ChatMessage, *, with_ban: bool) -> LoadedState:
        room, at = message.room, message.created_at
        author = author_key(message.author_identity)
        banned_as = ban_key_of(message.author_identity)  # a visitor tag or a platform identity
        # The ban lookup (BanStore, which also clears an expired ban) runs alongside the rest.
        ban_lookup = self.bans.get(room, banned_as) if with_ban and banned_as else _none()
        (decided_raw, recent_raw, strikes, muted_raw), ban = await asyncio.gather(
            self._read(room, author, message.id, at), ban_lookup
        )
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

    async def _read(self, room: str, author: str, message_id: str, at: int) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(decided_key(room, message_id))
            # Both sides of createdAt: instances judge at the same time, so a message created
            # a moment later may have been recorded first (see `checks/flood.py`).
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

    async def claim_room_place(self, message: ChatMessage, *, keep: int) -> int:
        """This message's place (1-based) among the room's approved messages in its second of
        `createdAt`; the same place again for the same message id (if within `keep`)."""
        key = room_places_key(message.room, room_window(message.created_at))
        place = await self._claim_room_place(
            keys=[key], args=[message.id, keep, ROOM_PLACES_TTL_MS]
        )
        return int(place)

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
