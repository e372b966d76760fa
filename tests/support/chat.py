"""Chat helpers for tests and benchmarks: viewers that record what the chat topic brings.

    async with ChatViewer.joined(livekit_server, room, "viewer_abcdefgh_00000001") as viewer:
        ...
        await viewer.wait_for_message(message_id)
        viewer.message_ids()          # every id received, in arrival order (duplicates kept)
        viewer.shown_ids()            # the list as the page shows it (placed by `seq`)

A batch packet (`ChatBatchEvent`) is recorded as its events, one after the other.

A viewer is a real `rtc.Room` client with a subscribe-only token (no publish, no data publish),
exactly like a browser's. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from livestage.identity import platform_identity
from livestage.schemas import (
    ChatMessage,
    ChatMessageEvent,
    ChatRejectedEvent,
    ChatRemovedEvent,
    ChatSource,
    chat_events_of,
    new_id,
    now_ms,
)
from tests.support.identities import viewer_identity
from tests.support.livekit_helpers import LiveKitEndpoint, join, leave, mint_token
from tests.support.services import livekit_env
from tests.support.waiting import Changed, until

CHAT_TOPIC = "anam-live-chat"
MODERATION_MODULE = "moderation"
MODERATION_READY_LINE = "moderation consuming"
ChatEvent = ChatMessageEvent | ChatRejectedEvent | ChatRemovedEvent


def chat_message(room: str, body: str = "hello", **fields: Any) -> ChatMessage:
    """An approved-looking viewer message with a fresh id, a fresh author and createdAt now;
    `fields` (`author_name="Ada"`, `created_at=...`) override any of them."""
    values: dict[str, Any] = {
        "id": new_id(),
        "room": room,
        "author_identity": viewer_identity(),
        "author_name": "Tester",
        "avatar": "fox",
        "body": body,
        "kind": "viewer",
        "created_at": now_ms(),
    }
    values.update(fields)
    return ChatMessage(**values)


def platform_message(
    room: str,
    body: str = "hello from the stream",
    *,
    platform: str = "twitch",
    user_id: str | None = None,
    event: str = "message",
    amount: str = "",
    roles: tuple[str, ...] = (),
    **fields: Any,
) -> ChatMessage:
    """A message from a platform's chat as chat-bridge publishes it on `chat.submitted`: author
    `<platform>:<user id>` (a fresh user unless `user_id`), avatar the platform, `source` set;
    `fields` override the message's fields (`author_name="Marta"`)."""
    user_id = user_id or secrets.token_hex(6)
    source = ChatSource(
        platform=platform,  # type: ignore[arg-type]
        user_id=user_id,
        message_id=new_id(),
        roles=list(roles),  # type: ignore[arg-type]
        event=event,  # type: ignore[arg-type]
        amount=amount,
    )
    values: dict[str, Any] = {
        "author_identity": platform_identity(platform, user_id),
        "author_name": "Marta",
        "avatar": platform,
        "source": source,
    }
    values.update(fields)
    return chat_message(room, body, **values)


@dataclass
class Received:
    event: ChatEvent
    at: float  # time.monotonic() at arrival
    topic: str


@dataclass
class ChatViewer:
    """One rtc client in a room, recording every packet on the chat topic."""

    room: rtc.Room
    identity: str
    topic: str = CHAT_TOPIC
    received: list[Received] = field(default_factory=list)
    invalid: list[bytes] = field(default_factory=list)
    packets: int = 0
    """Chat-topic packets received (a batch counts once)."""
    _changed: Changed = field(default_factory=Changed)

    disconnect_reason: Any = None

    def __post_init__(self) -> None:
        self.room.on("data_received", self._on_data)
        self.room.on("disconnected", self._on_disconnected)

    def _on_disconnected(self, reason: Any = None) -> None:
        self.disconnect_reason = reason if reason is not None else "unknown"
        self._changed.notify()

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if packet.topic != self.topic:
            return
        try:
            events = chat_events_of(packet.data)
        except ValueError:  # not a chat event (ValidationError), or a corrupt compressed one
            self.invalid.append(packet.data)
            return
        at = time.monotonic()
        self.received.extend(Received(event, at, packet.topic) for event in events)
        self.packets += 1
        self._changed.notify()

    @classmethod
    @contextlib.asynccontextmanager
    async def joined(
        cls,
        server: LiveKitEndpoint,
        room: str,
        identity: str | None = None,
        token: str | None = None,
        url: str | None = None,
    ) -> AsyncIterator[ChatViewer]:
        """Join with `token` (e.g. from the edge) or a subscribe-only token minted here."""
        identity = identity or viewer_identity()
        token = token or mint_token(
            server, identity, room, can_publish=False, can_publish_data=False
        )
        client = await join(url or server, token)
        viewer = cls(client, client.local_participant.identity)
        try:
            yield viewer
        finally:
            await leave(client)

    def messages(self) -> list[ChatMessage]:
        return [r.event.message for r in self.received if isinstance(r.event, ChatMessageEvent)]

    def message_ids(self) -> list[str]:
        return [message.id for message in self.messages()]

    def shown_ids(self) -> list[str]:
        """The ids in the order the page shows them (web/src/chat.ts `ChatStore.add`): each
        message with a `seq` after the last one held with a smaller `seq` (one without a `seq`
        stops the search), one without a `seq` by createdAt; duplicates once."""
        shown: list[tuple[ChatMessage, int]] = []
        seen: set[str] = set()
        for r in self.received:
            if not isinstance(r.event, ChatMessageEvent) or r.event.message.id in seen:
                continue
            message, seq = r.event.message, r.event.seq
            seen.add(message.id)
            index = len(shown)
            if seq:
                while index > 0 and shown[index - 1][1] > seq:
                    index -= 1
            else:
                while index > 0 and shown[index - 1][0].created_at > message.created_at:
                    index -= 1
            shown.insert(index, (message, seq))
        return [message.id for message, _ in shown]

    def rejections(self) -> list[ChatRejectedEvent]:
        return [r.event for r in self.received if isinstance(r.event, ChatRejectedEvent)]

    def removals(self) -> list[str]:
        return [r.event.message_id for r in self.received if isinstance(r.event, ChatRemovedEvent)]

    def arrival(self, message_id: str) -> float | None:
        """When the first `message` packet with this id arrived (monotonic), or None."""
        for r in self.received:
            if isinstance(r.event, ChatMessageEvent) and r.event.message.id == message_id:
                return r.at
        return None

    async def wait_until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Wait (bounded) until `condition()` holds, re-checked on every new packet."""

        def connected_and(condition: Callable[[], bool]) -> bool:
            if self.disconnect_reason is not None:
                raise ConnectionError(
                    f"{self.identity} was disconnected from LiveKit "
                    f"({self.disconnect_reason!r}) while waiting"
                )
            return condition()

        await self._changed.until(lambda: connected_and(condition), within, self.identity)

    async def wait_for_message(self, message_id: str, within: float = 10.0) -> ChatMessage:
        await self.wait_until(lambda: message_id in self.message_ids(), within)
        return next(m for m in self.messages() if m.id == message_id)


async def wait_for_participants(
    viewer: ChatViewer, identities: set[str], within: float = 10.0
) -> None:
    """Wait until `viewer` sees every identity in `identities` in its room (bounded)."""
    await until(lambda: identities <= set(viewer.room.remote_participants), within, f"{identities}")


def backend_env(nats: Any, redis: Any, livekit: Any, **extra: str) -> dict[str, str]:
    """Environment for our services against the test servers (LiveKit credentials included)."""
    return {
        "NATS_URL": nats.url,
        "REDIS_URL": redis.url,
        **livekit_env(livekit),
        **extra,
    }


@contextlib.contextmanager
def chat_services(env: dict[str, str], *, moderation: bool = True) -> Iterator[dict[str, Any]]:
    """Run the real moderation and chat-history processes for the chat path; stop them after.

    Yields the processes by name. Each is ready when this yields: chat-history has its consumers
    and the history responder, moderation is connected.
    """
    from tests.support.services import end_service, start_service_until

    started: dict[str, Any] = {}
    try:
        started["chat_history"] = start_service_until("chat_history", env, "serving")
        if moderation:
            started["moderation"] = start_service_until(
                MODERATION_MODULE, env, MODERATION_READY_LINE
            )
        yield started
    finally:
        for name, process in started.items():
            output = end_service(process)
            print(f"----- {name} output -----\n{output}")  # shown by pytest when a test fails
