"""The moderation service's wiring: JetStream in, checks, verdict out, state in Redis.

For every message on `chat.submitted.<room>` (one durable pull consumer, `MODERATION_DURABLE`,
shared by every instance so they split the work):

1. decide, in one optimistic Redis transaction (`StateStore.decide`): read what the checks need
   (the verdict if this id was already decided, the visitor's recent messages, strikes, mute,
   ban), run the configured checks (pure); if they approve and OpenAI is enabled, ask OpenAI
   (keeping the delivery alive meanwhile) and run them again with its answer; if they still
   approve and `room_rate` is on, take a place in the room's second from Redis (atomic across
   instances) and let `room_rate` judge it; then record the verdict and the new state. If
   another instance changed the visitor's state meanwhile, judge again on the new state (OpenAI's
   answer is kept), so simultaneous messages of one visitor are judged one after the other;
2. publish the `ChatMessage` unchanged on `chat.approved.<room>`, or a `ModerationVerdict` on
   `chat.rejected.<room>`, with the JetStream de-duplication id `moderation:<id>` (one id for
   both subjects, so a message gets at most one verdict within the duplicate window), mark the
   record published and count the verdict in `livestage.chat.verdicts`;
3. acknowledge (Consumer.run), so a crash anywhere before is a redelivery, never a loss.
   Redeliveries go on for the retry budget (`NATS_RETRY_BUDGET_S`); a message whose last
   delivery fails too is filed in the dead-letter stream (`livestage.deadletter`).

A show's own rules (`moderation.shows`, from the show store) join the checks: its blocked words
are one more check, and its room cap (per minute) replaces `room_rate`'s for its room.

A redelivery finds the recorded verdict: if it was published it is acknowledged without
publishing; if not (a crash between 1 and 2) that same verdict is published now.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import nats.errors
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus, Consumer, Delivery
from livestage.kv import connect_redis
from livestage.metrics import CHAT_VERDICTS, counter
from livestage.safety.normalize import normalize
from livestage.safety.openai import OpenAIModerator, OpenAIResult
from livestage.schemas import ChatMessage, ModerationVerdict
from livestage.service import connect_bus, until_stopped
from livestage.settings import OpenAISettings, RedisSettings
from moderation.checks import Context, build_checks
from moderation.checks.room_rate import RoomRate
from moderation.pipeline import Decision, Pipeline, strike_outcome
from moderation.settings import ModerationSettings
from moderation.shows import ShowRules
from moderation.state import Judgement, LoadedState, Recorded, StateStore

NAME = "moderation"
log = logging.getLogger(NAME)


def openai_moderator(
    settings: ModerationSettings, openai_settings: OpenAISettings
) -> OpenAIModerator | None:
    """OpenAI's moderation endpoint for chat, when enabled, keyed and the `openai` check runs."""
    if not settings.openai_enabled or "openai" not in settings.checks:
        return None
    moderator = OpenAIModerator.from_settings(settings, openai_settings)
    if moderator is None:
        log.warning(
            "MODERATION_OPENAI_ENABLED is on but OPENAI_API_KEY is empty: only the offline "
            "checks run"
        )
    return moderator


T = TypeVar("T")


def verdict_msg_id(message_id: str) -> str:
    """The Nats-Msg-Id of a message's verdict. Not the message id itself: the edge stored
    `chat.submitted` in the same CHAT stream under that id, so JetStream would drop the verdict
    as a duplicate of the submission."""
    return f"moderation:{message_id}"


def build_pipeline(settings: ModerationSettings) -> Pipeline:
    """The configured checks, in order (loads the lists and the classifier model)."""
    return Pipeline(build_checks(settings.checks, settings))


def instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Moderator:
    """Judges deliveries from `chat.submitted.*`; `handle` is the consumer's handler."""

    def __init__(
        self,
        bus: Bus,
        redis: Redis,
        pipeline: Pipeline,
        settings: ModerationSettings,
        *,
        openai: OpenAIModerator | None = None,
        instance: str | None = None,
    ) -> None:
        self.bus = bus
        self.pipeline = pipeline
        self.settings = settings
        self.store = StateStore(redis, settings)
        self.openai = openai if "openai" in pipeline.names else None
        self.instance = instance or instance_name()
        self.with_ban = "banned" in pipeline.names
        self.room_rate = next(
            (check for check in pipeline.checks if isinstance(check, RoomRate)), None
        )
        self.verdicts = counter(CHAT_VERDICTS)
        self.shows = ShowRules(redis)
        """The show's own rules per room (`moderation.shows`): blocked words, a room cap."""

    async def handle(self, delivery: Delivery[ChatMessage]) -> None:
        message = delivery.model
        room = subjects.room_of(delivery.subject)
        if message.room != room:
            log.error(
                "dropping message %s: it names room %r but came on %s",
                message.id,
                message.room,
                delivery.subject,
            )
            return
        openai_answers: list[OpenAIResult] = []  # asked once, whatever the retries

        async def judge(state: LoadedState) -> Judgement:
            return await self.judge(delivery, state, openai_answers)

        record, fresh = await self.store.decide(
            message, judge, with_ban=self.with_ban, instance=self.instance
        )
        if record.published:
            log.info(
                "message %s was already decided (%s by %s); acknowledging it again without "
                "publishing",
                message.id,
                record.verdict,
                record.instance,
            )
            return
        if not fresh:
            log.warning(
                "message %s was decided (%s by %s) but its verdict not published; publishing it",
                message.id,
                record.verdict,
                record.instance,
            )
        await self.publish(message, record)
        await self.store.mark_published(message, record)
        self.verdicts.add(
            1, {"verdict": record.verdict, "check": record.checks[0] if record.checks else ""}
        )

    async def judge(
        self,
        delivery: Delivery[ChatMessage],
        state: LoadedState,
        openai_answers: list[OpenAIResult],
    ) -> Judgement:
        """The decision on the delivered message given its author's `state`, and the strike it
        brings; OpenAI is asked at most once per delivery (its answer kept in `openai_answers`)."""
        message = delivery.model
        show = await self.shows.rules(message.room)
        context = Context(
            normalize(message.body),
            recent=state.recent,
            strikes=state.strikes,
            muted_until_ms=state.muted_until_ms,
            ban=state.ban,
        )
        decision = show.decide(self.pipeline, message, context)
        if decision.approved and self.openai is not None:
            if not openai_answers:
                # The call may outlast the ack wait: keep the message ours meanwhile.
                async with delivery.keep_alive(self.settings.redeliver_after_s[0] / 3):
                    openai_answers.append(await self.openai.moderate(message.body))
            context = replace(context, openai=openai_answers[0])
            decision = show.decide(self.pipeline, message, context)
        if decision.approved and show.per_minute is not None:  # the show's cap replaces ours
            busy = show.over_cap(await self.shows.claim_place(message, show))
            if busy is not None:
                decision = Decision((busy,), decision.fingerprint)
        elif decision.approved and self.room_rate is not None:
            place = await self.store.claim_room_place(message, keep=self.room_rate.max_per_second)
            context = replace(context, room_place=place)
            # Every other check approved, so the cap is the only one left to ask.
            busy = self.room_rate.check(message, context)
            if busy is not None:
                decision = Decision((busy,), decision.fingerprint)
        return decision, strike_outcome(decision, context, message.created_at, self.settings)

    async def publish(self, message: ChatMessage, record: Recorded) -> None:
        msg_id = verdict_msg_id(message.id)
        if record.approved:
            await self.bus.publish(subjects.chat_approved(message.room), message, msg_id=msg_id)
            return
        verdict = ModerationVerdict(
            message_id=message.id,
            room=message.room,
            author_identity=message.author_identity,
            verdict="rejected",
            reason=record.reason,
            checks=record.checks,
            decided_at=record.decided_at,
        )
        await self.bus.publish(subjects.chat_rejected(message.room), verdict, msg_id=msg_id)

    async def consumer(self, subject: str | None = None) -> Consumer[ChatMessage]:
        """The shared durable consumer (of every room unless `subject` narrows it, for tests)."""
        return await self.bus.consumer(
            subject or subjects.all_rooms("chat", "submitted"),
            ChatMessage,
            self.settings.durable,
            backoff_s=self.settings.redeliver_after_s,
        )

    async def run(self, consumer: Consumer[ChatMessage], stop: asyncio.Event) -> None:
        """Handle deliveries until `stop` is set, carrying on after NATS hiccups."""
        while not stop.is_set():
            try:
                await consumer.run(self.handle, stop=stop)
            except (nats.errors.Error, OSError) as error:
                if self.bus.nc.is_closed:
                    log.info("NATS connection closed; %s stops consuming", consumer.subject)
                    return
                log.warning("fetching from %s failed (%r); retrying", consumer.subject, error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)


async def in_daemon_thread(work: Callable[[], T]) -> T:
    """Run blocking `work` (loading models) off the event loop, in a thread that never holds up
    the process's exit, so a stop signal during start-up ends the service at once."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def target() -> None:
        try:
            result = work()
        except BaseException as error:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, functools.partial(future.set_exception, error))
        else:
            loop.call_soon_threadsafe(settle, functools.partial(future.set_result, result))

    threading.Thread(target=target, name="moderation-load", daemon=True).start()
    return await future


async def main(stop: asyncio.Event) -> None:
    settings = ModerationSettings()
    bus = await connect_bus(NAME, stop)
    if bus is None:
        return
    redis = connect_redis(RedisSettings())
    openai = openai_moderator(settings, OpenAISettings())
    consumer: Consumer[ChatMessage] | None = None
    try:
        pipeline = await until_stopped(in_daemon_thread(lambda: build_pipeline(settings)), stop)
        if pipeline is None:
            return
        moderator = Moderator(bus, redis, pipeline, settings, openai=openai)
        consumer = await moderator.consumer()
        log.info(
            "moderation consuming %s as durable %r; checks: %s%s",
            consumer.subject,
            settings.durable,
            ", ".join(pipeline.names),
            " (OpenAI on)" if moderator.openai else "",
        )
        await moderator.run(consumer, stop)
    finally:
        if consumer is not None:
            # Before the drain in bus.close(): a pull subscription's queue never reports
            # itself drained, so the drain would wait out its timeout.
            with contextlib.suppress(Exception):
                await consumer.unsubscribe()
        with contextlib.suppress(Exception):
            await redis.aclose()
        if openai is not None:
            await openai.close()
        await bus.close()
