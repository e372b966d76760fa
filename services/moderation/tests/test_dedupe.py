"""One verdict per message id, whatever JetStream or the edge delivers twice."""

from __future__ import annotations

import asyncio
import json

from livestage import subjects
from livestage.schemas import ChatMessage, ModerationVerdict
from moderation.app import verdict_msg_id
from moderation.pipeline import Pipeline
from moderation.state import decided_key
from services.moderation.tests.helpers import Harness, chat, new_author, stream_verdicts


async def _drained(harness: Harness) -> None:
    """Wait until the harness's consumer has acknowledged everything it was given."""
    durable = harness.moderator.settings.durable
    async with asyncio.timeout(10):
        while True:
            info = await harness.bus.js.consumer_info(subjects.CHAT.name, durable)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.05)


async def test_a_redelivery_after_the_dedupe_window_publishes_nothing_new(
    start_harness,
    default_pipeline: Pipeline,  # type: ignore[no-untyped-def]
) -> None:
    harness: Harness = await start_harness(default_pipeline)
    author = new_author()
    approved = chat(harness.room, "first message", author=author)
    rejected = chat(harness.room, "fuck this", author=author)
    for message in (approved, rejected):
        await harness.submit(message)
        await harness.verdicts.wait_for(message.id)

    # The same messages again under new Nats-Msg-Ids: what a redelivery looks like once the
    # JetStream de-duplication window has passed. Meanwhile the visitor's state changed (the
    # same text again would now be a duplicate): the recorded verdict stands regardless.
    for message in (approved, rejected):
        await harness.bus.publish(
            subjects.chat_submitted(harness.room), message, msg_id=f"later-{message.id}"
        )
    await _drained(harness)

    approved_seen, rejected_seen = await stream_verdicts(harness.bus, harness.room)
    assert [message.id for message in approved_seen] == [approved.id]
    assert [verdict.message_id for verdict in rejected_seen] == [rejected.id]
    record = json.loads(await harness.redis.get(decided_key(harness.room, approved.id)))
    assert record["verdict"] == "approved" and record["instance"] == "test"
    record = json.loads(await harness.redis.get(decided_key(harness.room, rejected.id)))
    assert record["verdict"] == "rejected" and record["checks"] == rejected_seen[0].checks


async def test_a_verdict_published_twice_is_stored_once(
    start_harness,
    default_pipeline: Pipeline,  # type: ignore[no-untyped-def]
) -> None:
    """A crash between publishing and recording: the retry's publish is a JetStream duplicate,
    even when the second verdict differs, because both carry `moderation:<id>`."""
    harness: Harness = await start_harness(default_pipeline)
    message = chat(harness.room, "hello")
    first = await harness.bus.publish(
        subjects.chat_approved(harness.room), message, msg_id=verdict_msg_id(message.id)
    )
    flipped = ModerationVerdict(
        message_id=message.id,
        room=harness.room,
        author_identity=message.author_identity,
        verdict="rejected",
        reason="Reason.",
        checks=["flood"],
        decided_at=message.created_at,
    )
    second = await harness.bus.publish(
        subjects.chat_rejected(harness.room), flipped, msg_id=verdict_msg_id(message.id)
    )
    assert not first.duplicate and second.duplicate
    approved_seen, rejected_seen = await stream_verdicts(harness.bus, harness.room)
    assert approved_seen == [message] and rejected_seen == []


async def test_the_verdict_id_differs_from_the_submission_id(
    harness: Harness,
) -> None:
    """The edge stores chat.submitted under the message id in the same CHAT stream; a verdict
    under that id would be dropped as its duplicate and never reach chat-history."""
    verdict = await harness.judge("a message approved within the dedupe window")
    assert isinstance(verdict, ChatMessage)
    approved_seen, _ = await stream_verdicts(harness.bus, harness.room)
    assert verdict.id in {message.id for message in approved_seen}
