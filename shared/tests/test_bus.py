"""`livestage.bus` against a real nats-server with JetStream (started by the root conftest)."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from nats.js.api import StorageType
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from livestage import subjects
from livestage.bus import Bus, Delivery
from livestage.schemas import ChatMessage, now_ms
from livestage.settings import NatsSettings
from tests.support.chat import chat_message

FAST_BACKOFF = (0.5, 0.5, 0.5)


def chat(room: str, body: str = "hello") -> ChatMessage:
    return chat_message(room, body)


def unique_room() -> str:
    return "r" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set only once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_streams_are_declared_idempotently_with_bounds(bus: Bus) -> None:
    await bus.ensure_streams()  # a second time changes nothing and raises nothing
    for stream in subjects.STREAMS:
        info = await bus.js.stream_info(stream.name)
        assert info.config.subjects == [f"{stream.domain}.>"]
        assert info.config.storage == StorageType.FILE
        assert info.config.max_age == bus.settings.stream_max_age_s
        assert info.config.max_bytes == bus.settings.stream_max_bytes


async def test_published_message_reaches_a_durable_consumer(bus: Bus) -> None:
    room = unique_room()
    message = chat(room)
    ack = await bus.publish(subjects.chat_submitted(room), message)
    assert ack.stream == "CHAT" and not ack.duplicate

    consumer = await bus.consumer(subjects.chat_submitted(room), ChatMessage, f"d-{room}")
    deliveries = await consumer.fetch(batch=5, timeout_s=2)
    assert [d.model for d in deliveries] == [message]
    await deliveries[0].ack()
    assert await consumer.fetch(batch=5, timeout_s=0.5) == []


async def test_consumer_that_dies_before_ack_gets_redelivered(nats_server, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    subject = subjects.chat_submitted(room)
    message = chat(room)
    await bus.publish(subject, message)

    # A first worker takes the message and dies (its connection closes) without acking.
    doomed = await Bus.connect(NatsSettings(url=nats_server.url), "doomed-worker")
    first = await doomed.consumer(subject, ChatMessage, f"d-{room}", backoff_s=FAST_BACKOFF)
    taken = await first.fetch(batch=1, timeout_s=2)
    assert [d.model.id for d in taken] == [message.id]
    await doomed.nc.close()

    # A second worker on the same durable consumer gets it again after the backoff.
    second = await bus.consumer(subject, ChatMessage, f"d-{room}", backoff_s=FAST_BACKOFF)
    async with asyncio.timeout(10):
        redelivered: list[Delivery[ChatMessage]] = []
        while not redelivered:
            redelivered = await second.fetch(batch=1, timeout_s=1)
    assert redelivered[0].model == message
    assert redelivered[0].num_delivered == 2
    await redelivered[0].ack()


async def test_handler_failure_is_redelivered_then_acked(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.chat_submitted(room)
    message = chat(room)
    await bus.publish(subject, message)
    consumer = await bus.consumer(subject, ChatMessage, f"d-{room}", backoff_s=FAST_BACKOFF)
    attempts: list[int] = []
    done = asyncio.Event()

    async def flaky(delivery: Delivery[ChatMessage]) -> None:
        attempts.append(delivery.num_delivered)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        done.set()

    runner = asyncio.create_task(consumer.run(flaky))
    try:
        async with asyncio.timeout(10):
            await done.wait()
            # the runner acks right after the handler returns
            while (await bus.js.consumer_info("CHAT", f"d-{room}")).num_ack_pending:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        runner.cancel()
    assert attempts == [1, 2]


async def test_keep_alive_holds_a_slow_delivery_past_its_ack_wait(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.chat_submitted(room)
    message = chat(room)
    await bus.publish(subject, message)
    backoff = (1.5, 1.5)  # ack wait 1.5 s
    first = await bus.consumer(subject, ChatMessage, f"d-{room}", backoff_s=backoff)
    second = await bus.consumer(subject, ChatMessage, f"d-{room}", backoff_s=backoff)
    [taken] = await first.fetch(batch=1, timeout_s=2)
    async with taken.keep_alive(every_s=0.5):
        # Another worker asks for the whole of three ack waits: the message stays the first's.
        assert await second.fetch(batch=1, timeout_s=4.5) == []
    await taken.ack()
    async with asyncio.timeout(10):
        while (info := await bus.js.consumer_info("CHAT", f"d-{room}")).num_ack_pending:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert info.delivered.consumer_seq == 1  # delivered once, never again
    assert taken.num_delivered == 1


async def test_same_id_twice_is_stored_once(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.chat_submitted(room)
    message = chat(room)
    first = await bus.publish(subject, message)
    second = await bus.publish(subject, message)
    assert not first.duplicate
    assert second.duplicate
    assert second.seq == first.seq

    consumer = await bus.consumer(subject, ChatMessage, f"d-{room}")
    deliveries = await consumer.fetch(batch=10, timeout_s=1.5)
    assert [d.model.id for d in deliveries] == [message.id]


async def test_invalid_payload_is_terminated_not_redelivered(nats_server, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    subject = subjects.chat_submitted(room)
    raw = await nats.connect(nats_server.url)
    await raw.jetstream().publish(subject, b'{"not": "a chat message"}')
    await raw.close()
    good = chat(room)
    await bus.publish(subject, good)

    consumer = await bus.consumer(subject, ChatMessage, f"d-{room}", backoff_s=FAST_BACKOFF)
    deliveries = await consumer.fetch(batch=10, timeout_s=1.5)
    assert [d.model.id for d in deliveries] == [good.id]
    await deliveries[0].ack()
    await asyncio.sleep(1.0)  # past the backoff: nothing comes back
    assert await consumer.fetch(batch=10, timeout_s=0.5) == []


async def test_trace_context_crosses_the_hop(bus: Bus, spans: InMemorySpanExporter) -> None:
    room = unique_room()
    subject = subjects.chat_submitted(room)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("http POST /api/chat") as producer_span:
        await bus.publish(subject, chat(room))
    producer_trace_id = producer_span.get_span_context().trace_id

    consumer = await bus.consumer(subject, ChatMessage, f"d-{room}")
    seen: list[int] = []
    handled = asyncio.Event()

    async def handler(delivery: Delivery[ChatMessage]) -> None:
        seen.append(trace.get_current_span().get_span_context().trace_id)
        handled.set()

    runner = asyncio.create_task(consumer.run(handler))
    try:
        async with asyncio.timeout(10):
            await handled.wait()
    finally:
        runner.cancel()

    assert seen == [producer_trace_id]
    finished = {span.name: span for span in spans.get_finished_spans()}
    process = finished[f"process {subject}"]
    publish = finished[f"publish {subject}"]
    assert process.context.trace_id == producer_trace_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


# ---- Bus.watch: ephemeral ordered consumers ---------------------------------------------------


async def _collect(bus: Bus, subject: str, start: object) -> tuple[list[str], object]:
    seen: list[str] = []

    async def handler(observed) -> None:  # type: ignore[no-untyped-def]
        seen.append(observed.model.body)

    watch = await bus.watch(subject, ChatMessage, handler, start=start)  # type: ignore[arg-type]
    return seen, watch


async def publish_old_then_cut(bus: Bus, subject: str, room: str) -> float:
    """Store an "old" message, then return a time (epoch seconds) strictly after it was stored."""
    await bus.publish(subject, chat(room, "old"))
    await asyncio.sleep(0.05)  # the stored time has a ms clock: step past it
    return now_ms() / 1000


async def test_watch_new_sees_only_what_comes_after_it(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.chat_approved(room)
    await bus.publish(subject, chat(room, "before"))
    seen, watch = await _collect(bus, subject, "new")
    await bus.publish(subject, chat(room, "after"))
    async with asyncio.timeout(5):
        while not seen:  # noqa: ASYNC110 - filled by the subscription callback
            await asyncio.sleep(0.02)
    assert seen == ["after"]
    await watch.stop()  # type: ignore[attr-defined]


async def test_watch_last_and_since_replay_the_chosen_past(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.stage_visual(room)
    cut = await publish_old_then_cut(bus, subject, room)
    await bus.publish(subject, chat(room, "newer"))
    await bus.publish(subject, chat(room, "newest"))
    last, watch_last = await _collect(bus, subject, "last")
    since, watch_since = await _collect(bus, subject, cut)
    async with asyncio.timeout(5):
        while not (last and len(since) == 2):  # noqa: ASYNC110 - filled by callbacks
            await asyncio.sleep(0.02)
    assert last == ["newest"]
    assert since == ["newer", "newest"]
    for watch in (watch_last, watch_since):
        await watch.stop()  # type: ignore[attr-defined]


async def test_watch_skips_invalid_payloads_and_survives_handler_errors(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.chat_approved(room)
    seen: list[str] = []

    async def handler(observed) -> None:  # type: ignore[no-untyped-def]
        seen.append(observed.model.body)
        if observed.model.body == "boom":
            raise RuntimeError("handler bug")

    watch = await bus.watch(subject, ChatMessage, handler)
    await bus.js.publish(subject, b"{not json")
    await bus.publish(subject, chat(room, "boom"))
    await bus.publish(subject, chat(room, "fine"))
    async with asyncio.timeout(5):
        while len(seen) < 2:  # noqa: ASYNC110 - filled by the subscription callback
            await asyncio.sleep(0.02)
    assert seen == ["boom", "fine"]
    await watch.stop()


async def test_history_reads_what_is_stored_since_a_time(bus: Bus) -> None:
    room = unique_room()
    subject = subjects.host_spoken(room)
    cut = await publish_old_then_cut(bus, subject, room)
    for body in ("one", "two", "three"):
        await bus.publish(subject, chat(room, body))
    found = await bus.history(subject, ChatMessage, since=cut)
    assert [o.model.body for o in found] == ["one", "two", "three"]
    assert all(o.stored_at >= cut - 0.01 for o in found)
    assert await bus.history(subjects.host_spoken(unique_room()), ChatMessage, since=cut) == []


async def test_closing_after_nats_went_away_neither_raises_nor_hangs(fresh_nats) -> None:  # type: ignore[no-untyped-def]
    """As when NATS stops first at a Ctrl-C: close() right after the server died (before or
    after the client noticed) returns, and the client is closed."""
    for pause_s in (0.0, 0.05, 0.6):
        server = fresh_nats()
        bus = await Bus.connect(NatsSettings(url=server.url), "closing-test")
        await bus.nc.publish("closing.test", b"unflushed")  # something left to flush
        server.kill()
        await asyncio.sleep(pause_s)  # the client notices the loss at some point in between
        async with asyncio.timeout(10):
            await bus.close()
        assert bus.nc.is_closed
