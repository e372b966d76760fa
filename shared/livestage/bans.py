"""Operator bans, kept in Redis so every edge replica and every moderation instance sees them.

A ban is per room and per visitor tag (see `livestage.identity`): banning the author of a message
bans the visitor behind that identity, so a new token for the same visitor is banned too. The
edge writes bans (operator routes) and refuses tokens and chat from banned visitors; moderation
also rejects their messages, which covers anything already queued.

A YouTube or Twitch chat author (brought in by chat-bridge) is banned by their platform identity
(`twitch:<user id>`): it takes the visitor tag's place as the ban's key (`ban_key_of`), and only
moderation enforces it (their messages never pass the edge). A platform user has no network the
edge could know, so their bans are always `scope` "visitor".

A ban with `scope` "network" also covers the network the visitor last came from (an IPv4 address
or an IPv6 /64, as the edge's rate limits count them), so dropping the cookie does not get the
visitor back in: the edge refuses new tokens and chat from that network, whoever asks. Addresses
change hands, so the network part always expires (`network_expires_at`, at most the ban's own
expiry); lifting the ban lifts both. The edge notes each visitor's network when it issues a token
or takes chat (`note_network`, kept for a while), which is what a network ban bans.

Layout, per room (`<room>` is a checked room name):

    livestage:bans:<room>                  hash: visitor tag (or platform identity) -> the ban
    livestage:bans:<room>:networks         hash: network -> visitor tag whose ban covers it
    livestage:bans:<room>:seen:<tag>       the network the visitor last came from (expiring)

A ban past its `expires_at` counts as lifted and is deleted when next read; a network entry
whose ban is gone, moved or past `network_expires_at` likewise. Writes that touch both hashes
are Lua scripts, so they are atomic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from livestage.schemas import now_ms
from livestage.subjects import check_room

BanScope = Literal["visitor", "network"]


@dataclass(frozen=True)
class Ban:
    visitor_tag: str
    """The ban's key: the visitor tag, or a platform chat author's identity (`ban_key_of`)."""
    identity: str = ""  # the identity the operator pointed at, if any (for the record)
    reason: str = ""
    created_at: int = 0
    expires_at: int = 0  # epoch ms; 0 = permanent
    scope: BanScope = "visitor"
    network: str = ""  # scope "network": the visitor's network (IPv4 address or IPv6 /64)
    network_expires_at: int = 0  # epoch ms the network part lifts (always set with a network)

    def active(self, at_ms: int) -> bool:
        return self.expires_at == 0 or self.expires_at > at_ms

    def covers_network(self, network: str, at_ms: int) -> bool:
        """Whether this ban refuses clients from `network` at `at_ms`."""
        return (
            self.scope == "network"
            and bool(self.network)
            and self.network == network
            and self.active(at_ms)
            and self.network_expires_at > at_ms
        )

    def to_wire(self) -> dict[str, object]:
        """camelCase, as the operator API shows it."""
        return {
            "visitorTag": self.visitor_tag,
            "identity": self.identity,
            "reason": self.reason,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "scope": self.scope,
            "network": self.network,
            "networkExpiresAt": self.network_expires_at,
        }

    @classmethod
    def from_json(cls, raw: str | bytes) -> Ban:
        """A stored ban; fields this version does not know (a newer writer's) are ignored."""
        data: dict[str, Any] = json.loads(raw)
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})


def network_ban_expiry(created_at: int, expires_at: int, max_s: int) -> int:
    """When the network part of a ban made at `created_at` lifts: with the ban, but no later
    than `max_s` after it was made (addresses change hands; a permanent ban keeps its visitor
    part)."""
    cap = created_at + max_s * 1000
    return min(expires_at, cap) if expires_at else cap


@dataclass(frozen=True)
class Refusal:
    """An active ban that refuses a request, and whether it matched by network."""

    ban: Ban
    by_network: bool

    @property
    def until_ms(self) -> int:
        """When the refusal ends (epoch ms; 0 = never)."""
        return self.ban.network_expires_at if self.by_network else self.ban.expires_at


def _key(room: str) -> str:
    return f"livestage:bans:{check_room(room)}"


def _networks_key(room: str) -> str:
    return f"{_key(room)}:networks"


def _seen_key(room: str, visitor_tag: str) -> str:
    return f"{_key(room)}:seen:{visitor_tag}"


def ban_keys(room: str, visitor_tag: str) -> tuple[str, str, str]:
    """The Redis keys `refusal_noting` reads and writes, for a script that does its first round
    trip's work itself: the room's bans (by visitor tag), its network bans (by network) and where
    the visitor was last seen."""
    return _key(room), _networks_key(room), _seen_key(room, visitor_tag)


# Drops the network entry an earlier ban of this visitor held, if it still points at them.
_RELEASE_OLD_NETWORK = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local was = cjson.decode(old)['network']
  if type(was) == 'string' and was ~= '' and was ~= ARGV[3]
      and redis.call('HGET', KEYS[2], was) == ARGV[1] then
    redis.call('HDEL', KEYS[2], was)
  end
end
"""

# KEYS: bans, networks; ARGV: tag, ban JSON, network ('' for none)
_BAN = (
    _RELEASE_OLD_NETWORK
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[1]) end
return 1
"""
)

# KEYS: bans, networks; ARGV: tag, the stored JSON to lift ('' = whatever is stored), ''.
# Lifts nothing when the stored ban is not the expected one (it was renewed meanwhile).
_LIFT = (
    """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or (ARGV[2] ~= '' and old ~= ARGV[2]) then return 0 end
"""
    + _RELEASE_OLD_NETWORK
    + """
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""
)

# KEYS: networks; ARGV: network, tag. Drops a stale network entry if it still names that tag.
_FORGET_NETWORK = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class BanStore:
    """Read and write the bans of rooms in one Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._ban = redis.register_script(_BAN)
        self._lift = redis.register_script(_LIFT)
        self._forget_network = redis.register_script(_FORGET_NETWORK)

    async def ban(self, room: str, ban: Ban) -> None:
        """Store `ban` (replacing the visitor's earlier one, and the network it covered)."""
        network = ban.network if ban.scope == "network" else ""
        await self._ban(
            keys=[_key(room), _networks_key(room)],
            args=[ban.visitor_tag, json.dumps(asdict(ban)), network],
        )

    async def unban(self, room: str, visitor_tag: str) -> bool:
        """Lift a ban (and the network it covered); False when there was none."""
        keys = [_key(room), _networks_key(room)]
        return bool(await self._lift(keys=keys, args=[visitor_tag, "", ""]))

    async def _lift_expired(self, room: str, visitor_tag: str, raw: Any) -> None:
        await self._lift(keys=[_key(room), _networks_key(room)], args=[visitor_tag, raw, ""])

    async def get(self, room: str, visitor_tag: str) -> Ban | None:
        """The active ban of this visitor, or None."""
        return await self._active(room, visitor_tag, await self.redis.hget(_key(room), visitor_tag))

    @staticmethod
    def key(room: str) -> str:
        """The hash of a room's bans by visitor tag: for a caller that reads a ban (HGET) in a
        round trip of its own, then asks `active` about it."""
        return _key(room)

    async def active(self, room: str, visitor_tag: str, raw: Any) -> Ban | None:
        """`get` on the `raw` ban the caller read itself (`key`)."""
        return await self._active(room, visitor_tag, raw)

    async def _active(self, room: str, visitor_tag: str, raw: Any) -> Ban | None:
        """The ban stored as `raw` for this visitor if it is still active (an expired one is
        lifted)."""
        if raw is None:
            return None
        ban = Ban.from_json(raw)
        if not ban.active(now_ms()):
            await self._lift_expired(room, visitor_tag, raw)
            return None
        return ban

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> list[Ban | None]:
        """`get` for several (room, visitor tag) pairs, read in one round trip."""
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for room, visitor_tag in keys:
                pipe.hget(_key(room), visitor_tag)
            raws: list[Any] = await pipe.execute()
        return [
            await self._active(room, visitor_tag, raw)
            for (room, visitor_tag), raw in zip(keys, raws, strict=True)
        ]

    async def refusal(self, room: str, visitor_tag: str | None, network: str) -> Refusal | None:
        """The ban that refuses this visitor (`None` for one the edge just made up) or anyone
        from `network`: the visitor's own ban first, else a network ban covering `network`."""
        if visitor_tag is not None:
            ban = await self.get(room, visitor_tag)
            if ban is not None:
                return Refusal(ban, by_network=False)
        return await self._network_refusal(
            room, network, await self.redis.hget(_networks_key(room), network)
        )

    async def refusal_noting(
        self, room: str, visitor_tag: str, network: str, ttl_s: int, *, new_visitor: bool = False
    ) -> Refusal | None:
        """`refusal` (of `visitor_tag`, unless it is a `new_visitor` the edge just made up) and
        `note_network` in one round trip, as the edge does for every chat message and token. A
        refused visitor's network is noted too: it is still where they last came from."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(_key(room), visitor_tag)
            pipe.hget(_networks_key(room), network)
            pipe.set(_seen_key(room, visitor_tag), network, ex=ttl_s)
            own, owner, _ = await pipe.execute()
        ban = None if new_visitor else await self._active(room, visitor_tag, own)
        if ban is not None:
            return Refusal(ban, by_network=False)
        return await self._network_refusal(room, network, owner)

    async def _network_refusal(self, room: str, network: str, owner: Any) -> Refusal | None:
        """The network ban of `owner` (the tag stored for `network`) if it covers `network`."""
        if owner is None:
            return None
        tag = _text(owner)
        ban = await self.get(room, tag)
        if ban is not None and ban.covers_network(network, now_ms()):
            return Refusal(ban, by_network=True)
        # Lifted, expired, or the visitor's ban now covers something else: forget the entry.
        await self._forget_network(keys=[_networks_key(room)], args=[network, tag])
        return None

    async def note_network(self, room: str, visitor_tag: str, network: str, ttl_s: int) -> None:
        """Remember the network the visitor came from, for `ttl_s` seconds."""
        await self.redis.set(_seen_key(room, visitor_tag), network, ex=ttl_s)

    async def network_of(self, room: str, visitor_tag: str) -> str | None:
        """The network the visitor last came from, if the edge saw them recently."""
        raw = await self.redis.get(_seen_key(room, visitor_tag))
        return None if raw is None else _text(raw)

    async def list(self, room: str) -> list[Ban]:
        """Every active ban of the room, newest first."""
        now = now_ms()
        bans = [Ban.from_json(raw) for raw in (await self.redis.hgetall(_key(room))).values()]
        return sorted(
            (ban for ban in bans if ban.active(now)), key=lambda ban: ban.created_at, reverse=True
        )
