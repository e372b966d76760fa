"""A room's show: is it live or ended, which stage layout, and the room's spend keys, in Redis.

Every edge replica, the host agent and the stage producer read the same record, so an ended show
stays ended whoever is asked (the edge dispatches no host, the stage producer makes no visuals),
and a page that joins late gets the current layout and show state from the edge's config.

    store = ShowStore(redis)
    show = await store.get("livestage")          # Show(state="live", layout="corner", ...)
    show = await store.end("livestage", reason="operator")
    show = await store.start("livestage")
    show = await store.set_layout("livestage", "side")

Layout, per room: `livestage:show:{<room>}` hash {state, layout, reason, updated_at}; a room
with no record is live with the default layout. The writer also publishes the change on NATS
(`ShowEvent` on `room.show.<room>`, `StageLayoutEvent` on `stage.layout.<room>`): this record is
what a late reader consults, the event is what a running one follows.

Spend: `livestage:host:spend:{<room>}:<YYYY-MM-DD>` (UTC day, a float the host agent adds to) and
`livestage:host:spend-cap:{<room>}` (the daily cap in USD the host agent works to, written when a
job goes live; absent or 0: no cap).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from redis.asyncio import Redis

from livestage.schemas import DEFAULT_LAYOUT, LAYOUTS, Layout, ShowState, now_ms
from livestage.subjects import check_room


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


class ShowStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

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
