"""What `GET /api/operator/events` sends (camelCase JSON, like every wire model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from livestage.schemas import (
    ChatMessage,
    EgressEvent,
    Layout,
    ShowState,
    StageVisual,
    WireModel,
)

ChatOutcome = Literal["pending", "approved", "rejected", "removed"]
HostState = Literal["none", "waiting", "live", "released", "ended"]


class ChatEntry(WireModel):
    """One chat message and what became of it: `pending` when submitted, then `approved`,
    `rejected` (with moderation's `reason` and `checks`) or `removed` (with the removal's
    reason). The same `message.id` comes again with each change; the page replaces it."""

    message: ChatMessage
    outcome: ChatOutcome = "pending"
    reason: str = ""
    checks: list[str] = Field(default_factory=list)


class Fallback(WireModel):
    """A backend failed mid-show and the local one took over."""

    at: int
    voice: str
    avatar: str
    reason: str


class HostStatus(WireModel):
    """The room's host job, folded from `host.job` events: `none` (no job seen), `waiting`
    (started, no viewer yet), `live`, `released` (paused long enough that the paid sessions
    were closed), `ended` (with `reason`). `since`: when this state began (epoch ms)."""

    state: HostState = "none"
    job_id: str = ""
    voice: str = ""
    avatar: str = ""
    fallbacks: list[Fallback] = Field(default_factory=list)
    reason: str = ""
    since: int = 0


class Numbers(WireModel):
    """The console's numbers. `viewers`: viewer participants in the room now (LiveKit);
    `chatPerMinute` and `rejectedShare` (0..1): over the verdicts of the last 10 minutes;
    `spendTodayUsd` against `spendCapUsd` (0: no cap); `reactionP50Ms`: median of the last 10
    replies' delay from the answered message to the host starting to speak (null: none yet);
    `reactions`: how many replies that median is over."""

    viewers: int = 0
    chat_per_minute: float = 0.0
    rejected_share: float = 0.0
    spend_today_usd: float = 0.0
    spend_cap_usd: float = 0.0
    reaction_p50_ms: int | None = None
    reactions: int = 0


class ShowStatus(WireModel):
    state: ShowState
    layout: Layout


class Snapshot(WireModel):
    """The first event of every stream: everything the console shows, as of now."""

    room: str
    show: ShowStatus
    chat: list[ChatEntry]
    visuals: list[StageVisual]
    host: HostStatus
    egress: EgressEvent | None
    numbers: Numbers
