"""`python -m moderation` as real processes on a NATS server of the test's own and Redis:
moderating what is published on `chat.submitted.<room>`, surviving SIGKILL, sharing the work."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, ModerationVerdict
from livestage.settings import NatsSettings
from moderation.state import decided_key
from services.moderation.tests.helpers import (
    chat,
    wait_for_verdicts,
)
from tests.support.otlp import OtlpCollector
from tests.support.services import ServiceOutput, start_service

READY = "moderation consuming"
CLEAN_BODIES = ["hi all", "what a view", "great stream", "where is this?", "so cool", "nice"]


@pytest.fixture
async def own_nats(fresh_nats) -> AsyncIterator[tuple[str, Bus]]:  # type: ignore[no-untyped-def]
    """A NATS server only this test's moderators consume from (their durable serves all rooms)."""
    server = fresh_nats()
    bus = await Bus.connect(NatsSettings(url=server.url), "moderation-process-tests")
    await bus.ensure_streams()
    yield server.url, bus
    await bus.close()


def _start(env: dict[str, str], outputs: list[ServiceOutput]) -> ServiceOutput:
    output = ServiceOutput(start_service("moderation", env))
    outputs.append(output)
    return output


def _env(nats_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The room cap raised out of reach: these bursts test delivery, not the cap."""
    return {
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "LIVESTAGE_LOG_LEVEL": "INFO",
        "MODERATION_ROOM_RATE": "1000000",
        **extra,
    }


def _clean(room: str, index: int) -> ChatMessage:
    """A clean message from a visitor of its own (so no spam window links two of them)."""
    return chat(room, f"{CLEAN_BODIES[index % len(CLEAN_BODIES)]} #{index}")


def _exactly_once(
    approved: list[ChatMessage], rejected: list[ModerationVerdict], expected: set[str]
) -> None:
    counts = Counter([m.id for m in approved] + [v.message_id for v in rejected])
    assert set(counts) == expected, (expected - set(counts), set(counts) - expected)
    assert all(count == 1 for count in counts.values()), counts.most_common(3)


async def test_moderates_survives_sigkill_and_catches_up_exactly_once(
    own_nats: tuple[str, Bus],
    redis_server,
    service_outputs: list[ServiceOutput],  # type: ignore[no-untyped-def]
) -> None:
    nats_url, bus = own_nats
    room = "proc-" + uuid.uuid4().hex[:10]
    # A short first redelivery delay, so what was in flight at the kill comes back quickly.
    env = _env(nats_url, redis_server.url, MODERATION_REDELIVER_AFTER_S="[2, 2, 5]")
    first = _start(env, service_outputs)
    await asyncio.to_thread(first.wait_for, READY, 60)

    # It moderates what the edge publishes: approvals unchanged, rejections with a reason.
    warmup = [_clean(room, index) for index in range(6)]
    rude = chat(room, "you stupid f u c k")
    spammy = chat(room, "buy now at cheap-pills.xyz")
    for message in [*warmup, rude, spammy]:
        await bus.publish(subjects.chat_submitted(room), message)
    approved, rejected = await wait_for_verdicts(bus, room, 8, within_s=20)
    assert {m.id for m in approved} == {m.id for m in warmup}
    assert all(m in warmup for m in approved)  # published unchanged
    by_id = {verdict.message_id: verdict for verdict in rejected}
    assert by_id[rude.id].checks[:1] == ["blocklist"] and "language" in by_id[rude.id].reason
    assert by_id[spammy.id].checks == ["links"]

    # Messages keep coming while the process is killed mid-stream and while it is down.
    during = [_clean(room, 100 + index) for index in range(30)]
    while_down = [_clean(room, 200 + index) for index in range(30)]
    for message in during:
        await bus.publish(subjects.chat_submitted(room), message)
        await asyncio.sleep(0.01)
    first.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(first.process.wait, 10)
    for message in while_down:
        await bus.publish(subjects.chat_submitted(room), message)

    second = _start(env, service_outputs)
    everything = [*warmup, rude, spammy, *during, *while_down]
    approved, rejected = await wait_for_verdicts(bus, room, len(everything), within_s=45)
    await asyncio.sleep(2.5)  # past the redelivery delay: anything doubled would show now
    approved, rejected = await wait_for_verdicts(bus, room, len(everything), within_s=5)
    _exactly_once(approved, rejected, {message.id for message in everything})
    assert {verdict.message_id for verdict in rejected} == {rude.id, spammy.id}

    # What was submitted while nothing ran was judged by the restarted process.
    redis = Redis.from_url(redis_server.url)
    try:
        for message in while_down:
            record = json.loads(await redis.get(decided_key(room, message.id)))
            assert record["instance"].endswith(f"-{second.process.pid}")
    finally:
        await redis.aclose()
    second.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(second.process.wait, 15) == 0
    assert "Traceback" not in second.finish()


async def test_two_instances_share_the_work_and_judge_each_message_once(
    own_nats: tuple[str, Bus],
    redis_server,
    service_outputs: list[ServiceOutput],  # type: ignore[no-untyped-def]
) -> None:
    nats_url, bus = own_nats
    room = "pair-" + uuid.uuid4().hex[:10]
    collector = OtlpCollector().start()
    # Metrics go to a local collector, once, when each process stops.
    env = _env(
        nats_url,
        redis_server.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_METRIC_EXPORT_INTERVAL_MS="600000",
    )
    try:
        pair = [_start(env, service_outputs) for _ in range(2)]
        for output in pair:
            await asyncio.to_thread(output.wait_for, READY, 60)

        rude = chat(room, "what a c*nt")
        spammy = chat(room, "free coins at coins.xyz")
        messages = [_clean(room, index) for index in range(200)] + [rude, spammy]
        await asyncio.gather(
            *(bus.publish(subjects.chat_submitted(room), message) for message in messages)
        )
        approved, rejected = await wait_for_verdicts(bus, room, len(messages), within_s=40)
        _exactly_once(approved, rejected, {message.id for message in messages})
        assert {verdict.message_id for verdict in rejected} == {rude.id, spammy.id}

        redis = Redis.from_url(redis_server.url)
        try:
            instances = Counter(
                [
                    json.loads(await redis.get(decided_key(room, message.id)))["instance"]
                    for message in messages
                ]
            )
        finally:
            await redis.aclose()
        # Both did part of the work (instance names end in the process id).
        assert {name.rsplit("-", 1)[1] for name in instances} == {
            str(output.process.pid) for output in pair
        }, instances

        for output in pair:
            output.process.send_signal(signal.SIGTERM)
        for output in pair:
            assert await asyncio.to_thread(output.process.wait, 15) == 0
            text = output.finish()
            assert "already decided" not in text and "decided twice" not in text, text
            assert "Traceback" not in text, text

        # Between them they counted every verdict once, by verdict and deciding check.
        assert collector.counter_totals("livestage.chat.verdicts") == {
            (("check", ""), ("verdict", "approved")): 200,
            (("check", "blocklist"), ("verdict", "rejected")): 1,
            (("check", "links"), ("verdict", "rejected")): 1,
        }
    finally:
        collector.stop()
