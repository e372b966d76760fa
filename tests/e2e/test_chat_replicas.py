"""Two moderation and two chat-history processes on the same durable consumers, against real
NATS, Redis and LiveKit, read by an rtc viewer: a burst to one room is approved once per
message, shown once per message, and placed in approval order (by `seq`, as the page places it);
one instance of each SIGKILLed mid-burst loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

from chat_history.store import HistoryStore, Limits
from livestage import subjects
from livestage.bus import Bus
from livestage.kv import connect_redis
from livestage.schemas import ChatMessage
from livestage.settings import RedisSettings
from tests.support.bus import connected_bus
from tests.support.chat import (
    MODERATION_MODULE,
    MODERATION_READY_LINE,
    ChatViewer,
    backend_env,
    chat_message,
)
from tests.support.services import end_service, start_service_until

BURST = 200
KILL_AFTER = 80


@contextlib.contextmanager
def replicas(env: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Two chat-history and two moderation processes (the real services), stopped after."""
    started: dict[str, subprocess.Popen[str]] = {}
    try:
        for n in (1, 2):
            started[f"chat_history_{n}"] = start_service_until("chat_history", env, "serving")
            started[f"moderation_{n}"] = start_service_until(
                MODERATION_MODULE, env, MODERATION_READY_LINE
            )
        yield started
    finally:
        for name, process in started.items():
            output = end_service(process)
            print(f"----- {name} output -----\n{output[-4000:]}")  # shown when a test fails


async def approved_in_stream_order(bus: Bus, room: str, since: float) -> list[str]:
    """The ids JetStream stored on `chat.approved.<room>`, in its order (approval order)."""
    stored = await bus.history(subjects.chat_approved(room), ChatMessage, since=since, limit=10_000)
    return [observed.model.id for observed in stored]


async def test_two_of_each_keep_every_message_once_in_approval_order_through_a_sigkill(
    nats_server: Any, redis_server: Any, livekit_server: Any
) -> None:
    room = "replicas-" + uuid.uuid4().hex[:10]
    env = backend_env(
        nats_server,
        redis_server,
        livekit_server,
        CHAT_FANOUT_WINDOW_MS="50",
        HISTORY_SEND_TIMEOUT_S="1",  # a killed instance's deliveries come back after 3 s
        MODERATION_REDELIVER_AFTER_S="[2]",
        MODERATION_ROOM_RATE="100000",  # the burst is many visitors; the cap has its own tests
    )
    since = time.time() - 1
    messages = [chat_message(room, f"burst line {n}, from visitor {n}") for n in range(BURST)]
    with replicas(env) as processes:
        async with (
            connected_bus(nats_server, "replicas-test") as bus,
            ChatViewer.joined(livekit_server, room) as viewer,
        ):
            for n, message in enumerate(messages):
                if n == KILL_AFTER:
                    for name in ("moderation_1", "chat_history_1"):
                        processes[name].send_signal(signal.SIGKILL)  # a crash: nothing drains
                await bus.publish(subjects.chat_submitted(room), message)
                if n % 20 == 19:
                    await asyncio.sleep(0.05)  # a burst in waves, so the kill lands mid-way
            everyone = {m.id for m in messages}
            await viewer.wait_until(lambda: everyone <= set(viewer.message_ids()), within=90)

            approval_order = await approved_in_stream_order(bus, room, since)
            assert sorted(approval_order) == sorted(everyone)  # each approved exactly once
            assert viewer.shown_ids() == approval_order  # shown once each, in approval order
            assert not viewer.rejections() and not viewer.invalid
            assert viewer.packets < BURST  # batched: fewer packets than messages

            redis = connect_redis(RedisSettings(url=redis_server.url))
            try:
                stored = await HistoryStore(redis, Limits(2000, 3600)).ids(room)
            finally:
                await redis.aclose()
            assert sorted(stored) == sorted(everyone)  # history holds each once
        assert processes["moderation_1"].wait(5) == -signal.SIGKILL
