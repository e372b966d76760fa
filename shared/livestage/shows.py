"""Shows: a room with its configuration, whether it is live, its layout, its spend keys; in Redis.

A show is a room (`ShowConfig.room`, a room name) with a title, persona, backends, stage sources,
moderation and spend cap (`livestage.schemas.ShowConfig`), created, changed and deleted by
operators (`/api/operator/shows`). The deployment's default show (LIVEKIT_ROOM) always exists:
without a stored record it has a default configuration, so `make run` needs no setup.

Why Redis: the edge, moderation, chat-history and the host agent already keep their shared
state there, so a show is one more hash beside the ban list and the spend counter; a change is
also published on NATS (`ShowConfigEvent` on `room.config.<room>`) for services that only
talk to NATS (the stage producer) and for every running reader to follow. This record is what a
late reader consults, the event is what a running one follows.

    store = ShowStore(redis, default_room="livestage")
    config = await store.config("quiz")                 # ShowConfig, or None: no such show
    await store.create(ShowConfig(room="quiz", title="Quiz night", ...))   # ShowExists if taken
    await store.replace(config)                          # UnknownShow if missing
    await store.delete("quiz")                           # the default show cannot be deleted
    rooms = await store.rooms()                          # every show, the default first
    show = await store.get("livestage")                  # Show(state="live", layout="corner")
    show = await store.end("livestage", reason="operator")
    show = await store.start("livestage")
    show = await store.set_layout("livestage", "side")

    cache = ShowCache(5.0, store, keep_missing=True)     # read through, each room kept 5 s
    config = await cache.config("quiz")                  # Redis at most once per 5 s per room
    cache.follow(event)                                  # a ShowConfigEvent applies at once

Layout, per room: `livestage:show:{<room>}` hash {config (ShowConfig JSON), state, layout,
reason, updated_at, default_created_at (the default show only: when it was first read, its
createdAt and updatedAt while no config is stored)}; `livestage:shows` SET of the rooms with a
stored config. A room with no state is live with the default layout.

Spend: `livestage:host:spend:{<room>}:<YYYY-MM-DD>` (UTC day, a float the host agent adds to) and
`livestage:host:spend-cap:{<room>}` (the daily cap in USD the host agent works to, written when a
job goes live; absent or 0: no cap).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError
from redis.asyncio import Redis

from livestage.schemas import (
    DEFAULT_LAYOUT,
    LAYOUTS,
    Layout,
    ShowConfig,
    ShowConfigEvent,
    ShowState,
    now_ms,
)
from livestage.subjects import check_room

SHOWS_KEY = "livestage:shows"
DEFAULT_CREATED_AT = "default_created_at"
"""The show hash's field with the default show's createdAt while it has no stored config."""
DEFAULT_TITLE = "Livestage"


class ShowExists(Exception):
    """A show with that room name exists already."""


class UnknownShow(LookupError):
    """No show has that room name."""


class DefaultShowKept(ValueError):
    """The deployment's default show (LIVEKIT_ROOM) cannot be deleted."""


@dataclass(frozen=True)
class Show:
    room: str
    state: ShowState = "live"
    layout: Layout = DEFAULT_LAYOUT
    reason: str = ""
    updated_at: int = 0

    @property
    def ended(self) -> bool:
        return self.state == "ended"


def show_key(room: str) -> str:
    return f"livestage:show:{{{check_room(room)}}}"


def spend_day(epoch_s: float) -> str:
    """The UTC day a spend counts against: `YYYY-MM-DD`."""
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).strftime("%Y-%m-%d")


def spend_key(room: str, day: str) -> str:
    return f"livestage:host:spend:{{{room}}}:{day}"


def spend_cap_key(room: str) -> str:
    return f"livestage:host:spend-cap:{{{room}}}"


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def default_config(room: str, title: str = DEFAULT_TITLE, at: int | None = None) -> ShowConfig:
    """The default show's configuration while none is stored: every setting the deployment's,
    created and last changed `at` (epoch ms; now when not given)."""
    at = now_ms() if at is None else at
    return ShowConfig(room=room, title=title, created_at=at, updated_at=at)


class ShowStore:
    def __init__(self, redis: Redis, default_room: str | None = None) -> None:
        """`default_room`: the show that exists without a record (LIVEKIT_ROOM); None: none."""
        self.redis = redis
        self.default_room = default_room

    # --- configuration ------------------------------------------------------------------------

    async def config(self, room: str) -> ShowConfig | None:
        """The show's configuration; None when there is no such show.

        A stored record that no longer validates (written by a newer version) is logged by the
        caller's absence of it: it counts as missing here, except for the default show, which
        then has the default configuration."""
        raw, default_at = await self.redis.hmget(show_key(room), ["config", DEFAULT_CREATED_AT])
        if raw is not None:
            try:
                return ShowConfig.from_json(raw)
            except ValidationError:
                pass
        if room != self.default_room:
            return None
        if default_at is None:
            default_at = await self._default_created_at(room)
        return default_config(room, at=int(default_at))

    async def _default_created_at(self, room: str) -> bytes | str:
        """When the default show was first read (recorded then, once: every reader, every
        replica and every later read agrees on it)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(show_key(room), DEFAULT_CREATED_AT, str(now_ms()))
            pipe.hget(show_key(room), DEFAULT_CREATED_AT)
            _, at = await pipe.execute()
        return at  # type: ignore[no-any-return]

    async def exists(self, room: str) -> bool:
        return room == self.default_room or bool(await self.redis.sismember(SHOWS_KEY, room))

    async def rooms(self) -> list[str]:
        """Every show's room: the default first, then the others by name."""
        stored = sorted(_text(r) for r in await self.redis.smembers(SHOWS_KEY))
        head = [self.default_room] if self.default_room else []
        return head + [r for r in stored if r != self.default_room]

    async def create(self, config: ShowConfig) -> ShowConfig:
        """Store a new show; ShowExists when the room has a stored configuration (the default
        show has none until one is created or replaced)."""
        if not await self.redis.hsetnx(show_key(config.room), "config", config.to_json()):
            raise ShowExists(config.room)
        await self.redis.sadd(SHOWS_KEY, config.room)
        return config

    async def replace(self, config: ShowConfig) -> ShowConfig:
        """Store the show's new configuration; UnknownShow when there is no such show."""
        if not await self.exists(config.room):
            raise UnknownShow(config.room)
        await self.redis.hset(show_key(config.room), "config", config.to_json())
        await self.redis.sadd(SHOWS_KEY, config.room)
        return config

    async def delete(self, room: str) -> None:
        """Forget the show (configuration, state, layout); its spend counters expire by day."""
        if room == self.default_room:
            raise DefaultShowKept(f"{room!r} is the deployment's default show (LIVEKIT_ROOM)")
        if not await self.exists(room):
            raise UnknownShow(room)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(show_key(room))
            pipe.srem(SHOWS_KEY, room)
            await pipe.execute()

    # --- state and layout -----------------------------------------------------------------------

    async def get(self, room: str) -> Show:
        raw = await self.redis.hgetall(show_key(room))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        state: ShowState = "ended" if fields.get("state") == "ended" else "live"
        layout = fields.get("layout", "")
        return Show(
            room=room,
            state=state,
            layout=layout if layout in LAYOUTS else DEFAULT_LAYOUT,
            reason=fields.get("reason", ""),
            updated_at=int(fields.get("updated_at") or 0),
        )

    async def _write(self, room: str, **fields: str) -> Show:
        await self.redis.hset(show_key(room), mapping=dict(fields, updated_at=str(now_ms())))  # type: ignore[arg-type]
        return await self.get(room)

    async def end(self, room: str, reason: str = "operator") -> Show:
        return await self._write(room, state="ended", reason=reason)

    async def start(self, room: str) -> Show:
        return await self._write(room, state="live", reason="")

    async def set_layout(self, room: str, layout: Layout) -> Show:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: one of {', '.join(LAYOUTS)}")
        return await self._write(room, layout=layout)


@dataclass
class ShowCache:
    """Show configurations read through a `ShowStore`, each room's kept `ttl_s` seconds (at most
    `size` rooms, the longest kept dropped first), so a hot path (a chat POST's room, a
    moderation batch's rooms) costs no Redis call per use. One cache for every reader: the edge
    asks `exists` (TOKEN_SHOW_CACHE_S), moderation asks `config` for its rules.

    A change applies at once where the reader follows `room.config.<room>` (`follow` each
    `ShowConfigEvent`) or says so (`forget`, `remember`); the TTL is the safety net for one it
    did not see. `keep_missing`: whether "no such show" is kept too (moderation: a room without
    a show is the common case) or asked about again every time (the edge: a new show's tokens
    work at once). `ttl_s` 0 asks every time. `store` may be given per call instead (the edge
    makes its store per request)."""

    ttl_s: float
    store: ShowStore | None = None
    size: int = 10_000
    keep_missing: bool = False
    clock: Callable[[], float] = time.monotonic
    _kept: OrderedDict[str, tuple[float, ShowConfig | None]] = field(
        default_factory=OrderedDict, repr=False
    )

    async def config(self, room: str, store: ShowStore | None = None) -> ShowConfig | None:
        """The room's configuration (None: no such show), from the cache while it is fresh."""
        now = self.clock()
        kept = self._kept.get(room)
        if kept is not None and now - kept[0] < self.ttl_s:
            return kept[1]
        config = await self._store(store).config(room)
        self.remember(room, config)
        return config

    async def exists(self, room: str, store: ShowStore | None = None) -> bool:
        """Whether a show has that name (the default show always: no Redis call for it)."""
        if room == self._store(store).default_room:
            return True
        return await self.config(room, store) is not None

    def remember(self, room: str, config: ShowConfig | None) -> None:
        """Keep what is known of the room now (None: no such show, kept if `keep_missing`)."""
        if self.ttl_s <= 0 or (config is None and not self.keep_missing):
            self._kept.pop(room, None)
            return
        self._kept[room] = (self.clock(), config)
        self._kept.move_to_end(room)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def follow(self, event: ShowConfigEvent) -> None:
        """A show was created, changed or deleted (`room.config.<room>`): apply it at once."""
        self.remember(event.room, event.config)

    def forget(self, room: str) -> None:
        """Ask the store next time (the room was changed or deleted here)."""
        self._kept.pop(room, None)

    def kept(self) -> list[str]:
        """The rooms kept, the longest kept first."""
        return list(self._kept)

    def peek(self, room: str) -> ShowConfig | None:
        """What is kept for the room, fresh or not, without asking the store (None: nothing)."""
        kept = self._kept.get(room)
        return kept[1] if kept is not None else None

    def _store(self, store: ShowStore | None) -> ShowStore:
        chosen = store or self.store
        if chosen is None:
            raise TypeError("ShowCache: no ShowStore given, to the cache or to the call")
        return chosen
