"""SIGKILL chat-history (a real `python -m chat_history` process) while 50 approved messages a
second flow, start it again: every message ends up in Redis exactly once and reaches every
viewer; a viewer sees an id twice only for a send that completed in the instant before the kill
(the page drops those by id)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from livestage import subjects
from livestage.bus import Bus
from livestage.kv import connect_redis
from livestage.settings import NatsSettings, RedisSettings
from tests.support.chat import ChatViewer, chat_message
from tests.support.services import end_service, start_service_until

RATE_PER_S = 50
DURATION_S = 8.0
KILL_AFTER_S = 2.5
BATCH = 64


@pytest.fixture
def history_env(fresh_nats, redis_server, livekit_server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    # A NATS of its own: the durable consumers start fresh, with this test's short ack wait.
    nats = fresh_nats()
    return {
        "NATS_URL": nats.url,
        "REDIS_URL": redis_server.url,
        "LIVEKIT_URL": livekit_server.url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "HISTORY_MAX_MESSAGES": "1000",
        "HISTORY_SEND_TIMEOUT_S": "1",  # first redelivery after 3 s
        "HISTORY_BATCH": str(BATCH),
    }


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        end_service(process)


def start_history(env: dict[str, str], started: list[subprocess.Popen[str]]) -> None:
    started.append(start_service_until("chat_history", env, "serving"))


async def test_sigkill_mid_flow_loses_nothing_and_stores_nothing_twice(
    history_env: dict[str, str],
    processes: list[subprocess.Popen[str]],
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    room = "crash-" + uuid.uuid4().hex[:10]
    bus = await Bus.connect(NatsSettings(url=history_env["NATS_URL"]), "crash-test")
    await bus.ensure_streams()
    redis = connect_redis(RedisSettings(url=history_env["REDIS_URL"]))
    await asyncio.to_thread(start_history, history_env, processes)
    sent_ids: list[str] = []
    try:
        async with (
            ChatViewer.joined(livekit_server, room) as a,
            ChatViewer.joined(livekit_server, room) as b,
            ChatViewer.joined(livekit_server, room) as c,
        ):
            killed_at: float | None = None
            started = time.monotonic()
            total = int(RATE_PER_S * DURATION_S)
            for n in range(total):
                await asyncio.sleep(max(0.0, started + n / RATE_PER_S - time.monotonic()))
                message = chat_message(room, f"message {n}")
                await bus.publish(subjects.chat_approved(room), message)
                sent_ids.append(message.id)
                if killed_at is None and time.monotonic() - started >= KILL_AFTER_S:
                    processes[0].kill()  # SIGKILL: no shutdown, no acks, no flush
                    processes[0].wait(5)
                    killed_at = time.monotonic()
                    # start again in the background while messages keep flowing
                    restart = asyncio.create_task(
                        asyncio.to_thread(start_history, history_env, processes)
                    )
            await restart
            assert killed_at is not None

            expected = set(sent_ids)
            for viewer in (a, b, c):
                await viewer.wait_until(lambda v=viewer: expected <= set(v.message_ids()), 25)
            # every delivery acked (redeliveries included) before counting duplicates
            async with asyncio.timeout(15):
                while True:
                    info = await bus.js.consumer_info("CHAT", "chat-history-approved")
                    if info.num_pending == 0 and info.num_ack_pending == 0:
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # packets sent before the last ack are still in flight
    finally:
        await bus.close()

    store_keys = f"livestage:history:{{{room}}}"
    stored_ids = [i.decode() for i in await redis.zrange(f"{store_keys}:order", 0, -1)]
    stored_bodies = await redis.hlen(f"{store_keys}:messages")
    await redis.aclose()
    assert len(stored_ids) == len(set(stored_ids)) == stored_bodies == len(sent_ids)
    assert set(stored_ids) == set(sent_ids)

    for viewer in (a, b, c):
        counts = Counter(viewer.message_ids())
        assert set(counts) == set(sent_ids)
        twice = [mid for mid, count in counts.items() if count > 1]
        # Only a send that completed just before the kill, not yet recorded, can repeat.
        assert len(twice) <= BATCH, twice
        assert max(counts.values()) <= 2
        print(f"{viewer.identity}: {len(counts)} ids, {len(twice)} received twice")
