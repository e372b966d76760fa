"""Helpers of the moderation tests: messages, verdict collection, service process output."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, ModerationVerdict
from livestage.text import clean_text
from moderation.app import Moderator
from tests.support.chat import chat_message
from tests.support.identities import viewer_identity


def new_author() -> str:
    """A fresh viewer identity (its own visitor tag, so nothing it sends affects others)."""
    return viewer_identity()


def chat(
    room: str,
    body: str,
    *,
    author: str | None = None,
    created_at: int | None = None,
    message_id: str | None = None,
) -> ChatMessage:
    """A chat message as the edge makes it (the body cleaned the way the edge cleans it)."""
    given = {"author_identity": author, "created_at": created_at, "id": message_id}
    return chat_message(
        room, clean_text(body), **{name: value for name, value in given.items() if value}
    )


@dataclass
class Verdicts:
    """Verdicts seen on `chat.approved.<room>` / `chat.rejected.<room>` (core subscription)."""

    approved: dict[str, ChatMessage] = field(default_factory=dict)
    rejected: dict[str, ModerationVerdict] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, msg: Msg) -> None:
        if msg.subject.startswith("chat.approved."):
            message = ChatMessage.from_json(msg.data)
            self.approved[message.id] = message
        else:
            verdict = ModerationVerdict.from_json(msg.data)
            self.rejected[verdict.message_id] = verdict
        self.arrived.set()

    async def wait_for(
        self, message_id: str, within_s: float = 10.0
    ) -> ChatMessage | ModerationVerdict:
        async with asyncio.timeout(within_s):
            while True:
                if message_id in self.approved:
                    return self.approved[message_id]
                if message_id in self.rejected:
                    return self.rejected[message_id]
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Harness:
    """One moderator running in-process on its own room (and its own durable)."""

    room: str
    bus: Bus
    redis: Redis
    moderator: Moderator
    verdicts: Verdicts

    async def submit(self, message: ChatMessage) -> None:
        await self.bus.publish(subjects.chat_submitted(self.room), message)

    async def judge(
        self, body: str, *, within_s: float = 10.0, **fields: Any
    ) -> ChatMessage | ModerationVerdict:
        """Submit one message and wait for its verdict."""
        message = chat(self.room, body, **fields)
        await self.submit(message)
        return await self.verdicts.wait_for(message.id, within_s)


async def stream_verdicts(bus: Bus, room: str) -> tuple[list[ChatMessage], list[ModerationVerdict]]:
    """Every verdict JetStream stored for `room` (what a durable consumer downstream would get:
    a publish JetStream dropped as a duplicate is not there)."""
    approved: list[ChatMessage] = []
    rejected: list[ModerationVerdict] = []
    for subject, into, model in (
        (subjects.chat_approved(room), approved, ChatMessage),
        (subjects.chat_rejected(room), rejected, ModerationVerdict),
    ):
        subscription = await bus.js.pull_subscribe(subject, stream=subjects.CHAT.name)
        try:
            while True:
                try:
                    msgs = await subscription.fetch(256, timeout=0.3)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                for msg in msgs:
                    into.append(model.from_json(msg.data))  # type: ignore[attr-defined]
                    await msg.ack()
        finally:
            await subscription.unsubscribe()
    return approved, rejected


async def wait_for_verdicts(
    bus: Bus, room: str, count: int, within_s: float
) -> tuple[list[ChatMessage], list[ModerationVerdict]]:
    """Poll the stream until it holds at least `count` verdicts for `room`."""
    async with asyncio.timeout(within_s):
        while True:
            approved, rejected = await stream_verdicts(bus, room)
            if len(approved) + len(rejected) >= count:
                return approved, rejected
            await asyncio.sleep(0.3)
