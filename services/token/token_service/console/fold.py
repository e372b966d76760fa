"""Pure folds of what NATS says into what the console shows: data in, data out, no I/O.

Each domain is followed by its own watch, so a verdict or a removal may be heard before the
submission it is about (they are different subjects): `ChatLog` holds such early news until
the message comes, and an outcome never goes back to `pending`.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import assert_never

from livestage.schemas import ChatMessage, ChatRemoval, HostJobEvent, ModerationVerdict, StageVisual

from .models import ChatEntry, Fallback, HostStatus

CHAT_ENTRIES = 100
VISUALS = 10
EARLY_NEWS = 1000
"""Verdicts and removals kept for messages not seen yet (older ones are forgotten)."""


def _bounded_put(table: OrderedDict[str, object], key: str, value: object, cap: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > cap:
        table.popitem(last=False)


class ChatLog:
    """The last `CHAT_ENTRIES` messages (by `createdAt`) with their moderation outcomes."""

    def __init__(self, capacity: int = CHAT_ENTRIES) -> None:
        self.capacity = capacity
        self._entries: dict[str, ChatEntry] = {}
        # (createdAt, id) of every kept entry, a heap: the oldest is found without a scan of
        # them all (each submitted message is put here, however busy the room)
        self._order: list[tuple[int, str]] = []
        self._verdicts: OrderedDict[str, object] = OrderedDict()
        self._removals: OrderedDict[str, object] = OrderedDict()

    def entries(self) -> list[ChatEntry]:
        """Oldest first."""
        return sorted(self._entries.values(), key=lambda e: (e.message.created_at, e.message.id))

    def get(self, message_id: str) -> ChatEntry | None:
        return self._entries.get(message_id)

    def submitted(self, message: ChatMessage) -> ChatEntry | None:
        """A message came in; returns its entry (pending, or what early news said) if new."""
        if message.id in self._entries:
            return None
        entry = ChatEntry(message=message)
        verdict = self._verdicts.pop(message.id, None)
        if isinstance(verdict, ModerationVerdict):
            entry = _rejected(entry, verdict)
        removal = self._removals.pop(message.id, None)
        if isinstance(removal, ChatRemoval):
            entry = _removed(entry, removal)
        return self._put(entry)

    def approved(self, message: ChatMessage) -> ChatEntry | None:
        entry = self._entries.get(message.id)
        if entry is None:
            entry = self.submitted(message)
            if entry is None:  # older than everything kept
                return None
        if entry.outcome != "pending":
            return None
        return self._put(entry.model_copy(update={"message": message, "outcome": "approved"}))

    def rejected(self, verdict: ModerationVerdict) -> ChatEntry | None:
        entry = self._entries.get(verdict.message_id)
        if entry is None:
            _bounded_put(self._verdicts, verdict.message_id, verdict, EARLY_NEWS)
            return None
        if entry.outcome != "pending":
            return None
        return self._put(_rejected(entry, verdict))

    def removed(self, removal: ChatRemoval) -> ChatEntry | None:
        entry = self._entries.get(removal.message_id)
        if entry is None:
            _bounded_put(self._removals, removal.message_id, removal, EARLY_NEWS)
            return None
        if entry.outcome == "removed":
            return None
        return self._put(_removed(entry, removal))

    def _put(self, entry: ChatEntry) -> ChatEntry | None:
        message_id = entry.message.id
        if message_id not in self._entries:
            heapq.heappush(self._order, (entry.message.created_at, message_id))
        self._entries[message_id] = entry
        if len(self._entries) > self.capacity:
            _, oldest = heapq.heappop(self._order)
            del self._entries[oldest]
            if oldest == message_id:
                return None
        return entry


def _rejected(entry: ChatEntry, verdict: ModerationVerdict) -> ChatEntry:
    return entry.model_copy(
        update={"outcome": "rejected", "reason": verdict.reason, "checks": list(verdict.checks)}
    )


def _removed(entry: ChatEntry, removal: ChatRemoval) -> ChatEntry:
    return entry.model_copy(update={"outcome": "removed", "reason": removal.reason})


def fold_host(status: HostStatus, event: HostJobEvent) -> HostStatus:
    """The host's status after `event`. A job other than the current one starts afresh (its
    fallbacks are its own), except the late `ended` of a job already replaced, which is old
    news."""
    current = event.job_id == status.job_id
    if not current:
        if event.event == "ended" and status.state in ("waiting", "live", "released"):
            return status
        status = HostStatus(job_id=event.job_id)
    voice = event.voice or status.voice
    avatar = event.avatar or status.avatar
    at = event.created_at
    match event.event:
        case "started":
            return HostStatus(
                job_id=event.job_id, state="waiting", voice=voice, avatar=avatar, since=at
            )
        case "live" | "rebuilt":
            state_changed = status.state != "live"
            return status.model_copy(
                update={
                    "state": "live",
                    "voice": voice,
                    "avatar": avatar,
                    "reason": "",
                    "since": at if state_changed else status.since,
                }
            )
        case "fallback":
            fallback = Fallback(at=at, voice=voice, avatar=avatar, reason=event.reason)
            return status.model_copy(
                update={
                    "state": "live" if status.state in ("none", "waiting") else status.state,
                    "voice": voice,
                    "avatar": avatar,
                    "fallbacks": [*status.fallbacks, fallback],
                    "since": status.since or at,
                }
            )
        case "released":
            return status.model_copy(
                update={"state": "released", "reason": event.reason, "since": at}
            )
        case "ended":
            return status.model_copy(update={"state": "ended", "reason": event.reason, "since": at})
    assert_never(event.event)


def add_visual(
    visuals: list[StageVisual], visual: StageVisual, keep: int = VISUALS
) -> list[StageVisual]:
    """The recent visuals after `visual` (oldest first, one per id, at most `keep`)."""
    kept = [v for v in visuals if v.id != visual.id]
    kept.append(visual)
    kept.sort(key=lambda v: v.created_at)
    return kept[-keep:]
