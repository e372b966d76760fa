"""A durable consumer's lag reaches the NATS_CONSUMER_PENDING gauge: JetStream's num_pending at
each fetch, 0 once a fetch finds nothing. Real NATS; metrics read at a local OTLP collector
double, in a fresh interpreter (global providers are set once a process)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.support import otlp

PROBE = """
import asyncio, sys
from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, now_ms
from livestage.settings import NatsSettings
from livestage.telemetry import setup_telemetry

nats_url, room, durable = sys.argv[1:4]
telemetry = setup_telemetry("lag-probe")

def message(n):
    return ChatMessage(id=f"{room}-{n}", room=room, author_identity="viewer_abc_0123abcd",
                       author_name="Ann", avatar="fox", body=f"hello {n}", kind="viewer",
                       created_at=now_ms())

async def main():
    bus = await Bus.connect(NatsSettings(url=nats_url), "lag-probe")
    await bus.ensure_streams()
    subject = subjects.chat_submitted(room)
    for n in range(5):
        await bus.publish(subject, message(n))
    consumer = await bus.consumer(subject, ChatMessage, durable)
    got = await consumer.fetch(batch=2)
    assert len(got) == 2, got
    telemetry.meter_provider.force_flush()
    print("PENDING-AFTER-2", flush=True)
    for delivery in got + await consumer.fetch(batch=3):
        await delivery.ack()
    assert await consumer.fetch(batch=1, timeout_s=0.2) == []
    telemetry.meter_provider.force_flush()
    await bus.close()

asyncio.run(main())
telemetry.shutdown()
"""


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


def test_consumer_lag_is_reported_per_durable(collector, nats_server) -> None:  # type: ignore[no-untyped-def]
    room = f"lag{uuid.uuid4().hex[:8]}"
    durable = f"lag_probe_{room}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, nats_server.url, room, durable],
        env=env | {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    values = [
        p.value
        for p in collector.received.points
        if p.metric == "livestage.nats.consumer_pending" and p.attributes == {"consumer": durable}
    ]
    # first flush: 3 of 5 still waiting; last flush: none
    assert values[0] == 3 and values[-1] == 0, values
