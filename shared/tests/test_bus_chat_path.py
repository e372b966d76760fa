"""The bus on the chat path: a batch handled concurrently (a failure comes back without holding
up the rest), and one message id on two subjects of one stream."""

from __future__ import annotations

import asyncio
import uuid

from livestage import subjects
from livestage.bus import Bus, Delivery
from livestage.schemas import ChatMessage
from tests.support.chat import chat_message


async def test_a_batch_is_handled_concurrently_and_a_failure_comes_back(bus: Bus) -> None:
    room = "r" + uuid.uuid4().hex[:12]
    subject = subjects.chat_approved(room)
    messages = [chat_message(room, f"m{n}") for n in range(8)]
    for message in messages:
        await bus.publish(subject, message)
    consumer = await bus.consumer(subject, ChatMessage, f"d-{room}", backoff_s=(0.5, 0.5))

    in_flight = 0
    most_in_flight = 0
    all_in = asyncio.Event()
    attempts: dict[str, int] = {}
    done: set[str] = set()
    finished = asyncio.Event()

    async def handler(delivery: Delivery[ChatMessage]) -> None:
        nonlocal in_flight, most_in_flight
        body = delivery.model.body
        attempts[body] = attempts.get(body, 0) + 1
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        if in_flight == len(messages):
            all_in.set()
        try:
            if attempts[body] == 1:
                # every handler of the first batch waits until all of them are running at once
                await asyncio.wait_for(all_in.wait(), 5)
            if body == "m3" and attempts[body] == 1:
                raise RuntimeError("first attempt fails")
        finally:
            in_flight -= 1
        done.add(body)
        if len(done) == len(messages):
            finished.set()

    runner = asyncio.create_task(consumer.run_concurrently(handler, batch=len(messages)))
    try:
        async with asyncio.timeout(10):
            await finished.wait()
            while (await bus.js.consumer_info("CHAT", f"d-{room}")).num_ack_pending:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await consumer.pending() == 0
    finally:
        runner.cancel()
    assert most_in_flight == len(messages)
    assert attempts["m3"] == 2
    assert all(count == 1 for body, count in attempts.items() if body != "m3")


async def test_one_id_on_two_subjects_of_a_stream_is_two_messages(bus: Bus) -> None:
    """Moderation publishes the approved message under the id it was submitted with."""
    room = "r" + uuid.uuid4().hex[:12]
    message = chat_message(room, "hi")
    submitted = await bus.publish(subjects.chat_submitted(room), message)
    approved = await bus.publish(subjects.chat_approved(room), message)
    again = await bus.publish(subjects.chat_approved(room), message)
    assert not submitted.duplicate and not approved.duplicate
    assert again.duplicate and again.seq == approved.seq


async def test_a_lone_message_is_fetched_at_once_and_a_backlog_in_one_batch(bus: Bus) -> None:
    """Moderation's pick-up (`Consumer.run_batches` fetches up to MODERATION_BATCH with a long
    poll): a message arriving while the fetch waits on the server comes back at once, not when
    the batch is full or the poll expires; messages already waiting come in one fetch."""
    room = "r" + uuid.uuid4().hex[:12]
    consumer = await bus.consumer(subjects.chat_submitted(room), ChatMessage, f"lone-{room}")
    fetching = asyncio.create_task(consumer.fetch(batch=64, timeout_s=60))
    for _ in range(500):  # bounded: 10 s for the long poll to be waiting on the server
        if (await consumer.subscription.consumer_info()).num_waiting:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the fetch never waited on the server")
    lone = chat_message(room, "alone")
    await bus.publish(subjects.chat_submitted(room), lone)
    # far sooner than the 60 s poll: it does not wait for the other 63
    deliveries = await asyncio.wait_for(fetching, 20)
    assert [d.model for d in deliveries] == [lone]
    await deliveries[0].ack()

    backlog = [chat_message(room, f"line {n}") for n in range(20)]
    for message in backlog:
        await bus.publish(subjects.chat_submitted(room), message)
    deliveries = await asyncio.wait_for(consumer.fetch(batch=64, timeout_s=60), 20)
    assert [d.model for d in deliveries] == backlog
    for delivery in deliveries:
        await delivery.ack()
