"""Dead letters (`livestage.deadletter`) through the real bus on a real nats-server: a message
whose last allowed delivery fails, or that never validates, is filed with its error, subject,
headers and payload and counted; a replay reaches that consumer once (even inside JetStream's
de-duplication window) and nobody else; consumers get deliveries covering the retry budget."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import nats
from nats.aio.msg import Msg
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from livestage import metrics, subjects
from livestage.bus import Bus, Consumer, Delivery, HandBack, Handler, Observed
from livestage.deadletter import REPLAY_FOR_HEADER, DeadLetters
from livestage.retry import retry_policy
from livestage.schemas import ChatMessage, DeadLetter
from livestage.settings import NatsSettings
from tests.support.bus import connected_bus
from tests.support.chat import chat_message

FAST = (0.3,)  # ack wait 0.3 s


def unique(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10]


def counted(reader: InMemoryMetricReader) -> dict[tuple[str, str], float]:
    data = reader.get_metrics_data()
    return {
        (str(p.attributes["consumer"]), str(p.attributes["reason"])): p.value
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == metrics.BUS_DEAD_LETTERED.name
        for p in metric.data.data_points  # type: ignore[union-attr]
    }


async def settled(bus: Bus, durable: str) -> Any:
    """The consumer's info once nothing is awaiting an ack (acks and terms reach the server a
    moment after they are sent)."""
    async with asyncio.timeout(10):
        while (info := await bus.js.consumer_info("CHAT", durable)).num_ack_pending:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return info


async def filed(bus: Bus, durable: str, room: str, count: int = 1) -> list[DeadLetter]:
    """Wait (bounded) until `count` dead letters of `durable` in `room` arrived."""
    got: list[DeadLetter] = []
    enough = asyncio.Event()

    async def on(msg: Msg) -> None:
        got.append(DeadLetter.from_json(msg.data))
        if len(got) >= count:
            enough.set()

    sub = await bus.nc.subscribe(subjects.deadletter(durable, room), cb=on)
    try:
        # ones filed before the subscription started are in the stream already
        for stored in await bus.dead_letters.list(consumer=durable, room=room):
            got.append(stored.letter)
        if len(got) < count:
            async with asyncio.timeout(15):
                await enough.wait()
    finally:
        await sub.unsubscribe()
    return got[:count]


async def handled_until_filed(
    bus: Bus, consumer: Consumer[ChatMessage], handler: Handler[ChatMessage], room: str
) -> DeadLetter:
    """Run `consumer` with `handler` until its one dead letter in `room` is filed."""
    stop = asyncio.Event()
    runner = asyncio.create_task(consumer.run(handler, stop=stop))
    try:
        [letter] = await filed(bus, consumer.durable, room)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 5)
    return letter


async def test_the_last_failed_delivery_becomes_a_dead_letter(bus: Bus) -> None:
    reader = InMemoryMetricReader()
    bus.dead_letters = DeadLetters(bus.js, MeterProvider(metric_readers=[reader]).get_meter("t"))
    room, durable = unique("r"), unique("d-")
    subject = subjects.chat_approved(room)
    message = chat_message(room)
    await bus.publish(subject, message)
    consumer = await bus.consumer(subject, ChatMessage, durable, max_deliver=3, backoff_s=FAST)
    attempts: list[int] = []

    async def failing(delivery: Delivery[ChatMessage]) -> None:
        attempts.append(delivery.num_delivered)
        raise ConnectionError("Redis is down")

    letter = await handled_until_filed(bus, consumer, failing, room)
    assert attempts == [1, 2, 3]
    assert letter.consumer == durable and letter.reason == "exhausted"
    assert letter.error == "ConnectionError: Redis is down"
    assert letter.subject == subject and letter.room == room and letter.deliveries == 3
    assert letter.headers["Nats-Msg-Id"] == f"{subject}:{message.id}"
    assert ChatMessage.from_json(letter.payload) == message
    assert letter.stream == "CHAT" and letter.stream_seq > 0
    assert counted(reader) == {(durable, "exhausted"): 1}
    # Terminated: JetStream holds nothing for the consumer any more (the term follows the
    # dead letter; it reaches the server a moment later).
    info = await settled(bus, durable)
    assert info.delivered.stream_seq == letter.stream_seq and info.num_pending == 0


async def test_a_handed_back_delivery_comes_again_after_its_delay_and_then_dead_letters(
    bus: Bus,
) -> None:
    room, durable = unique("r"), unique("d-")
    subject = subjects.chat_approved(room)
    await bus.publish(subject, chat_message(room))
    # An ack wait of 60 s: the deliveries that come sooner are the nak's (0.1 s), not timeouts.
    consumer = await bus.consumer(subject, ChatMessage, durable, max_deliver=3, backoff_s=(60,))
    attempts: list[int] = []

    async def not_mine(delivery: Delivery[ChatMessage]) -> None:
        attempts.append(delivery.num_delivered)
        raise HandBack("another replica runs this room", 0.1)

    letter = await handled_until_filed(bus, consumer, not_mine, room)
    assert attempts == [1, 2, 3]
    assert letter.reason == "exhausted" and letter.deliveries == 3
    assert letter.error == "HandBack: another replica runs this room"
    assert (await settled(bus, durable)).num_pending == 0


async def test_an_invalid_payload_is_filed_as_invalid(nats_server, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    reader = InMemoryMetricReader()
    bus.dead_letters = DeadLetters(bus.js, MeterProvider(metric_readers=[reader]).get_meter("t"))
    room, durable = unique("r"), unique("d-")
    subject = subjects.chat_submitted(room)
    raw = await nats.connect(nats_server.url)
    await raw.jetstream().publish(subject, b'{"body": "<b>no id</b>"}')
    await raw.jetstream().publish(subject, b"\xff\xfe not text")
    await raw.close()
    consumer = await bus.consumer(subject, ChatMessage, durable, max_deliver=5, backoff_s=FAST)
    assert await consumer.fetch(batch=10, timeout_s=1.5) == []
    letters = sorted(await filed(bus, durable, room, count=2), key=lambda x: x.stream_seq)
    assert {letter.reason for letter in letters} == {"invalid"}
    assert all(letter.deliveries == 1 for letter in letters)
    assert "'id'" in letters[0].error and "Field required" in letters[0].error
    assert "Invalid JSON" in letters[1].error
    assert json.loads(letters[0].payload) == {"body": "<b>no id</b>"}
    assert letters[1].payload_encoding == "base64"
    stored = await bus.dead_letters.list(consumer=durable)
    assert stored[0].payload_bytes == b"\xff\xfe not text"  # newest first, bytes kept exactly
    assert counted(reader) == {(durable, "invalid"): 2}


async def test_a_replay_is_delivered_once_to_its_consumer_only(bus: Bus) -> None:
    room = unique("r")
    durable, other = unique("d-"), unique("o-")
    subject = subjects.chat_approved(room)
    message = chat_message(room)
    watched: list[str] = []
    watch = await bus.watch(
        subject, ChatMessage, lambda o: _append(watched, o), start=time.time() - 1
    )
    # Another durable consumer of the same subject handles the original normally.
    bystander = await bus.consumer(subject, ChatMessage, other, max_deliver=3, backoff_s=FAST)
    await bus.publish(subject, message)
    [original] = await bystander.fetch(batch=5, timeout_s=2)
    await original.ack()

    failing = await bus.consumer(subject, ChatMessage, durable, max_deliver=2, backoff_s=FAST)

    async def down(delivery: Delivery[ChatMessage]) -> None:
        raise TimeoutError("LiveKit did not answer")

    stop = asyncio.Event()
    runner = asyncio.create_task(failing.run(down, stop=stop))
    try:
        await filed(bus, durable, room)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 5)
    [stored] = await bus.dead_letters.list(consumer=durable, room=room)
    assert (await bus.dead_letters.get(stored.seq)) == stored

    # Replayed well inside the de-duplication window: the original Nats-Msg-Id would be dropped.
    ack = await bus.dead_letters.replay(stored)
    assert not ack.duplicate
    assert await bus.dead_letters.get(stored.seq) is None  # deleted once the replay is stored
    again = await bus.dead_letters.replay(stored)  # a second press: stored once
    assert again.duplicate and again.seq == ack.seq

    [replayed] = await failing.fetch(batch=5, timeout_s=2)
    assert replayed.model == message
    assert replayed.msg.headers is not None
    assert replayed.msg.headers[REPLAY_FOR_HEADER] == durable
    await replayed.ack()
    # The bystander acks and skips it; the watcher skips it: both had the original.
    assert await bystander.fetch(batch=5, timeout_s=1.0) == []
    info = await settled(bus, other)
    assert info.num_pending == 0 and info.delivered.consumer_seq == 2  # the original, the replay
    await watch.stop()
    assert watched == [message.id]
    assert await bus.dead_letters.list(consumer=durable, room=room) == []
    assert await bus.dead_letters.delete(stored.seq) is False


async def test_consumers_get_deliveries_covering_the_retry_budget(nats_server) -> None:  # type: ignore[no-untyped-def]
    settings = NatsSettings(url=nats_server.url, retry_budget_s=30, retry_max_backoff_s=4)
    room = unique("r")
    async with connected_bus(nats_server) as plain:
        bus = Bus(plain.nc, settings)
        durable = unique("d-")
        await bus.consumer(subjects.chat_approved(room), ChatMessage, durable, backoff_s=(2.0,))
        config = (await bus.js.consumer_info("CHAT", durable)).config
    policy = retry_policy(30, first_s=2.0, cap_s=4)
    assert config.max_deliver == policy.max_deliver
    assert config.backoff == list(policy.backoff_s) == [2.0, 4.0]
    assert policy.covers_s >= 30


async def test_the_dead_letter_stream_is_declared_with_its_own_age(bus: Bus) -> None:
    info = await bus.js.stream_info(subjects.DEADLETTER.name)
    assert info.config.subjects == ["deadletter.>"]
    assert info.config.max_age == bus.settings.deadletter_max_age_s


async def _append(into: list[str], observed: Observed[ChatMessage]) -> None:
    into.append(observed.model.id)


async def test_an_existing_durable_dead_letters_at_the_limit_jetstream_holds(bus: Bus) -> None:
    room, durable = unique("r"), unique("d-")
    subject = subjects.chat_approved(room)
    await bus.consumer(subject, ChatMessage, durable, max_deliver=2, backoff_s=FAST)
    # Created again with other settings: JetStream keeps the first limit, and the bus follows
    # it (else an upgraded deployment would never see its "last" delivery).
    again = await bus.consumer(subject, ChatMessage, durable, max_deliver=7, backoff_s=FAST)
    server_limit = (await bus.js.consumer_info("CHAT", durable)).config.max_deliver
    assert server_limit == 2
    assert again.max_deliver == 2
