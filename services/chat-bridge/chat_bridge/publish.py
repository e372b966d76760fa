"""The bridge's `Sink`: platform chat onto the bus as page chat travels.

`submit` turns a `PlatformMessage` into a viewer `ChatMessage` (`convert.to_chat_message`),
records it in Redis (`records`), then publishes it on `chat.submitted.<room>` with the
de-duplication id `<platform>:<message id>`: moderation, chat-history, the host and the page
take it from there. The same message again (a reconnect, a restart, a replayed page) is counted
as a duplicate and published nowhere twice: JetStream refuses it within its window, and the
bridge's own record of what it published covers the rest of BRIDGE_KEEP_S.

`remove_message` / `remove_user` publish `ChatRemoval`s on `chat.removed.<room>` (as an
operator's removal does: chat-history forgets the message, every page hides it, and one that is
still on its way is kept out when it arrives). Metrics: `livestage.bridge.messages`, `.lag`,
`.connected`, `.problems` (see `livestage.metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry.metrics import Meter

from livestage import metrics, subjects
from livestage.bus import Bus
from livestage.schemas import PLATFORM_NAMES, ChatRemoval, Platform, now_ms, removal_id

from .convert import Unpublishable, chat_id, dedupe_id, reply_target, to_chat_message
from .records import Records
from .source import PlatformMessage

log = logging.getLogger(__name__)

# Whether each show's platform is followed right now, in this process (the BRIDGE_CONNECTED
# gauge is registered once, on the first sink, and reads this): (room, platform) -> 0 or 1.
_connected: dict[tuple[str, str], int] = {}
_gauges: list[object] = []


def _observe_connected() -> list[tuple[float, dict[str, str]]]:
    return [
        (float(up), {"platform": platform, "room": room})
        for (room, platform), up in sorted(_connected.items())
    ]


class BridgeSink:
    """Implements `source.Sink` for one room."""

    def __init__(
        self,
        bus: Bus,
        records: Records,
        room: str,
        *,
        meter: Meter | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.bus = bus
        self.records = records
        self.room = subjects.check_room(room)
        self.clock_ms = clock_ms
        self._messages = metrics.counter(metrics.BRIDGE_MESSAGES, meter)
        self._lag = metrics.histogram(metrics.BRIDGE_LAG, meter)
        self._problems = metrics.counter(metrics.BRIDGE_PROBLEMS, meter)
        self._last_problem: dict[str, str] = {}
        if meter is not None:
            metrics.gauge(metrics.BRIDGE_CONNECTED, _observe_connected, meter)
        elif not _gauges:
            _gauges.append(metrics.gauge(metrics.BRIDGE_CONNECTED, _observe_connected))

    def _count(self, platform: Platform, outcome: str, n: int = 1) -> None:
        self._messages.add(n, {"platform": platform, "outcome": outcome})

    async def submit(self, message: PlatformMessage) -> None:
        now = self.clock_ms()
        try:
            chat = to_chat_message(message, self.room, now)
        except Unpublishable as error:
            self._count(message.platform, "invalid")
            log.debug("skipping %s item %r: %s", message.platform, message.message_id, error)
            return
        if await self.records.remember(chat.id, reply_target(message), now):
            self._count(message.platform, "duplicate")
            return
        ack = await self.bus.publish(
            subjects.chat_submitted(self.room),
            chat,
            msg_id=dedupe_id(message.platform, message.message_id),
        )
        await self.records.published(chat.id)
        if ack.duplicate:
            self._count(message.platform, "duplicate")
            return
        self._count(message.platform, "submitted")
        self._lag.record(
            max(self.clock_ms() - message.published_at_ms, 0), {"platform": message.platform}
        )

    async def remove_message(self, platform: Platform, message_id: str) -> None:
        await self._remove(platform, [chat_id(platform, message_id)])

    async def remove_user(self, platform: Platform, user_id: str) -> None:
        chat_ids = await self.records.chats_of(platform, user_id)
        await self._remove(platform, chat_ids)
        await self.records.forget_chats(platform, user_id, chat_ids)
        log.info(
            "%s banned or timed out a user: removed their %d message(s) from %s",
            PLATFORM_NAMES[platform],
            len(chat_ids),
            self.room,
        )

    async def _remove(self, platform: Platform, chat_ids: list[str]) -> None:
        reason = f"removed by {PLATFORM_NAMES[platform]}'s moderators"
        for removed in chat_ids:
            removal = ChatRemoval(
                id=removal_id(removed),
                room=self.room,
                message_id=removed,
                reason=reason,
                created_at=self.clock_ms(),
            )
            await self.bus.publish(subjects.chat_removed(self.room), removal)
            self._count(platform, "removed")

    def connected(self, platform: Platform, up: bool) -> None:
        was = _connected.get((self.room, platform))
        _connected[(self.room, platform)] = int(up)
        if up and self._last_problem.pop(platform, None) is not None:
            log.info("%s chat is followed again", PLATFORM_NAMES[platform])
        elif was != int(up):
            log.info("%s chat %s", PLATFORM_NAMES[platform], "followed" if up else "not followed")

    def close(self) -> None:
        """The room's bridge stopped (its show was deleted or changed its sources): its
        platforms leave the connected gauge."""
        for key in [key for key in _connected if key[0] == self.room]:
            del _connected[key]

    def problem(self, platform: Platform, outcome: str, detail: str) -> None:
        self._problems.add(1, {"platform": platform, "outcome": outcome})
        if self._last_problem.get(platform) != outcome:
            self._last_problem[platform] = outcome
            log.warning("%s chat: %s: %s", PLATFORM_NAMES[platform], outcome, detail)
        else:
            log.debug("%s chat: %s again: %s", PLATFORM_NAMES[platform], outcome, detail)
