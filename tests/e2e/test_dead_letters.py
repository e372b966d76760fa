"""Redis outages during chat, with the real moderation, chat-history and edge processes on a
NATS of their own, chat-history on a Redis of its own that the test stops and starts. The
retry budget is scaled down (NATS_RETRY_BUDGET_S=8, each retry 2 s apart):

1. Redis down for part of the budget: every message accepted meanwhile is delivered once after
   it returns (history holds each once, a viewer receives each once).
2. Redis down past the budget: chat-history files each message in the dead-letter stream
   (`deadletter.chat-history-approved.<room>`), counts it in `livestage.bus.dead_lettered`
   (seen through OTLP), and an operator lists them and replays each through
   `/api/operator/deadletters`: then each is delivered once, and the dead letters are gone.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nats.aio.msg import Msg

from livestage import metrics, subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, DeadLetter, HistoryReply, HistoryRequest
from livestage.settings import NatsSettings
from tests.support import otlp
from tests.support.chat import MODERATION_READY_LINE, ChatViewer, backend_env, chat_message
from tests.support.services import (
    edge_env,
    end_service,
    free_port,
    start_service_until,
    wait_http_ok,
)

SECRET = "dead-letter-test-operator-secret-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}
CONSUMER = "chat-history-approved"
RETRY = {
    "NATS_RETRY_BUDGET_S": "8",
    "NATS_RETRY_MAX_BACKOFF_S": "1",  # never under the first wait: 2 s
    "HISTORY_SEND_TIMEOUT_S": "0.5",  # first wait 2 x 0.5 + 1 = 2 s
    "MODERATION_REDELIVER_AFTER_S": "[1]",
}
BATCH = 6


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        print(end_service(process))


def dead_lettered(collector: otlp.OtlpCollector, room_consumer: str) -> float:
    """The latest cumulative value of dead_lettered{consumer, reason=exhausted}."""
    values = [
        point.value
        for point in collector.received.points
        if point.metric == metrics.BUS_DEAD_LETTERED.name
        and point.attributes.get("consumer") == room_consumer
        and point.attributes.get("reason") == "exhausted"
    ]
    return max(values, default=0.0)


async def history_ids(bus: Bus, room: str) -> Counter[str]:
    reply = await bus.request(
        subjects.history_recent(room), HistoryRequest(room=room, limit=200), HistoryReply
    )
    return Counter(message.id for message in reply.messages)


async def publish_chat(bus: Bus, room: str, label: str) -> list[ChatMessage]:
    """What the edge does for an accepted POST /api/chat: store it on chat.submitted."""
    sent = [chat_message(room, f"{label} line {n} about the stars") for n in range(BATCH)]
    for message in sent:
        await bus.publish(subjects.chat_submitted(room), message)
    return sent


async def test_redis_outages_within_and_past_the_retry_budget(  # type: ignore[no-untyped-def]
    fresh_nats, fresh_redis, redis_server, livekit_server, collector, processes
) -> None:
    nats = fresh_nats()
    history_redis = fresh_redis(persistence=True)
    room = "dl-" + uuid.uuid4().hex[:10]
    exports = otlp.fast_export_env(collector.url)
    history_env = backend_env(nats, history_redis, livekit_server, **RETRY, **exports)
    moderation_env = backend_env(nats, redis_server, livekit_server, **RETRY)
    port = free_port()
    edge_settings = edge_env(
        port,
        nats,
        redis_server,
        livekit_server,
        LIVEKIT_ROOM=room,
        LIVESTAGE_OPERATOR_SECRET=SECRET,
    )
    for package, env, ready in (
        ("token_service", edge_settings, "Application startup complete"),
        ("chat_history", history_env, "serving"),
        ("moderation", moderation_env, MODERATION_READY_LINE),
    ):
        processes.append(await asyncio.to_thread(start_service_until, package, env, ready))
    edge, history = processes[0], processes[1]
    await asyncio.to_thread(wait_http_ok, f"http://127.0.0.1:{port}/healthz", edge)
    bus = await Bus.connect(NatsSettings(url=nats.url), "dead-letter-test")
    letters: list[DeadLetter] = []
    filed = asyncio.Event()

    async def on_dead_letter(msg: Msg) -> None:
        letters.append(DeadLetter.from_json(msg.data))
        if len(letters) >= BATCH:
            filed.set()

    await bus.nc.subscribe(subjects.deadletter(CONSUMER, room), cb=on_dead_letter)
    try:
        async with (
            ChatViewer.joined(livekit_server, room) as viewer,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as operator,
        ):
            # 1. Down for part of the budget (until chat-history has failed a redelivery).
            await asyncio.to_thread(history_redis.stop)
            early = await publish_chat(bus, room, "early")
            # a redelivery failed too: the outage outlasted a first retry
            await asyncio.to_thread(history.output.wait_for, "(delivery 2 of", 30)
            await asyncio.to_thread(history_redis.start)
            ids = [m.id for m in early]
            await viewer.wait_until(lambda: set(ids) <= set(viewer.message_ids()), within=30)
            assert await _once_each(bus, room, ids)
            assert letters == []

            # 2. Down past the budget: dead letters, counted, then replayed by the operator.
            await asyncio.to_thread(history_redis.stop)
            late = await publish_chat(bus, room, "late")
            late_ids = {m.id for m in late}
            async with asyncio.timeout(60):
                await filed.wait()
            assert {ChatMessage.from_json(x.payload).id for x in letters} == late_ids
            assert all(x.reason == "exhausted" and x.deliveries == 5 for x in letters)
            assert all("Redis" in x.error or "Connection" in x.error for x in letters)
            await asyncio.to_thread(
                collector.wait_for,
                lambda _: dead_lettered(collector, CONSUMER) >= BATCH or None,
                20,
                "dead_lettered{consumer=chat-history-approved} to count the batch",
            )
            await asyncio.to_thread(history_redis.start)

            listed = await operator.get(
                "/api/operator/deadletters", params={"consumer": CONSUMER, "room": room}
            )
            assert listed.status_code == 401
            listed = await operator.get(
                "/api/operator/deadletters",
                params={"consumer": CONSUMER, "room": room},
                headers=AUTH,
            )
            assert listed.status_code == 200, listed.text
            found = listed.json()["deadLetters"]
            assert {x["payload"]["id"] for x in found} == late_ids
            assert [x["id"] for x in found] == sorted((x["id"] for x in found), reverse=True)
            for item in found:
                replay = await operator.post(
                    f"/api/operator/deadletters/{item['id']}/replay", headers=AUTH
                )
                assert replay.status_code == 202, replay.text
            await viewer.wait_until(lambda: late_ids <= set(viewer.message_ids()), within=30)
            assert await _once_each(bus, room, [*ids, *late_ids])
            again = await operator.post(
                f"/api/operator/deadletters/{found[0]['id']}/replay", headers=AUTH
            )
            assert again.status_code == 404
            left = await operator.get(
                "/api/operator/deadletters", params={"room": room}, headers=AUTH
            )
            assert left.json() == {"deadLetters": []}
            seen = Counter(viewer.message_ids())
            assert {i: seen[i] for i in [*ids, *late_ids]} == dict.fromkeys([*ids, *late_ids], 1)
    finally:
        await bus.close()


async def _once_each(bus: Bus, room: str, ids: Any) -> bool:
    stored = await history_ids(bus, room)
    assert {i: stored[i] for i in ids} == dict.fromkeys(ids, 1), stored
    return True
