"""The moderation service's wiring: JetStream in, checks, verdict out, state in Redis.

Messages on `chat.submitted.<room>` (one durable pull consumer, `MODERATION_DURABLE`, shared by
every instance so they split the work) are handled a fetch at a time, up to `MODERATION_BATCH`:

1. decide, in one optimistic Redis transaction for the batch (`StateStore.decide_batch`): read
   what the checks need for every message in one script (the verdict if this id was already
   decided, the author's recent messages, strikes, mute, ban, and a digest of them); run the
   configured checks (pure) on each message in order, counting the batch's earlier messages of
   the same author into its state (`state.with_earlier`), so flood, duplicate and strike counts
   are what one-at-a-time handling would give; if they approve and OpenAI is enabled, ask
   OpenAI (keeping the delivery alive meanwhile) and run them again with its answer; an
   approved one in a capped room (a second, or a minute where the room's show sets its own
   cap) claims a place in the room's window, and `room_rate` says what a place past the cap
   gets; then one script records every verdict and the state it adds, taking the places (in
   batch order, atomic across instances), if no digest changed. If another instance changed
   any of that state meanwhile, the batch is judged again on the new state (OpenAI's answers
   are kept), so simultaneous messages of one visitor are judged one after the other;
2. publish each `ChatMessage` unchanged on `chat.approved.<room>`, or a `ModerationVerdict` on
   `chat.rejected.<room>`, with JetStream async publishes (sent in batch order, confirmed
   together), with the de-duplication id `moderation:<id>` (one id for both subjects, so a
   message gets at most one verdict within the duplicate window); mark the confirmed records
   published (`StateStore.published_soon`: the next batch's read carries the marks, or they are
   written on their own within 0.1 s) and count the verdicts in `livestage.chat.verdicts`;
3. acknowledge each message whose verdict was confirmed (`Consumer.run_batches`), so a crash
   anywhere before is a redelivery, never a loss. Redeliveries go on for the retry budget
   (`NATS_RETRY_BUDGET_S`); a message whose last delivery fails too is filed in the dead-letter
   stream (`livestage.deadletter`).

A show's own rules (`moderation.shows`, from the shared show cache, following `room.config.*`)
join the checks: its blocked words are one more check, and its room cap (per minute) replaces
`room_rate`'s per-second one for its room, through the same places (step 1).

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
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import nats.errors
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus, Consumer, Delivery, Observed
from livestage.kv import connect_redis
from livestage.metrics import CHAT_VERDICTS, counter
from livestage.safety.normalize import normalize
from livestage.safety.openai import OpenAIModerator, OpenAIResult
from livestage.schemas import ChatMessage, ModerationVerdict, ShowConfigEvent, WireModel
from livestage.service import connect_bus, until_stopped
from livestage.settings import OpenAISettings, RedisSettings
from moderation.checks import Context, RecentMessage, build_checks
from moderation.checks.room_rate import RoomRate
from moderation.pipeline import Decision, Pipeline, strike_outcome
from moderation.settings import ModerationSettings
from moderation.shows import RoomRules, ShowRules
from moderation.state import (
    BatchJudgement,
    Judged,
    LoadedState,
    Recorded,
    RoomClaim,
    StateStore,
    author_key,
    with_earlier,
)

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
        """The deployment's room cap, when MODERATION_CHECKS has it (a show's own applies
        regardless: it judges its room through `room_cap`)."""
        self.room_cap = self.room_rate or RoomRate()
        self.verdicts = counter(CHAT_VERDICTS)
        self.shows = ShowRules(redis)
        """The show's own rules per room (`moderation.shows`): blocked words, a room cap;
        following `room.config.*` while `run` runs."""

    async def handle_batch(
        self, deliveries: list[Delivery[ChatMessage]]
    ) -> list[BaseException | None]:
        """Judge what one fetch brought (`Consumer.run_batches`'s handler): per delivery None
        (verdict published: ack) or the error that left it for redelivery."""
        outcomes: list[BaseException | None] = [None] * len(deliveries)
        first_of: dict[str, int] = {}  # a message id twice in one batch is judged once
        for i, delivery in enumerate(deliveries):
            message = delivery.model
            if message.room != subjects.room_of(delivery.subject):
                log.error(
                    "dropping message %s: it names room %r but came on %s",
                    message.id,
                    message.room,
                    delivery.subject,
                )
                continue
            first_of.setdefault(message.id, i)
        judged = [deliveries[i] for i in first_of.values()]
        openai_answers: dict[str, OpenAIResult] = {}  # asked once, whatever the retries

        async def judge(states: list[LoadedState]) -> list[BatchJudgement | None]:
            return await self.judge_batch(judged, states, openai_answers)

        decided = await self.store.decide_batch(
            [d.model for d in judged], judge, with_ban=self.with_ban, instance=self.instance
        )
        to_publish: list[tuple[ChatMessage, Recorded]] = []
        contexts = []  # each verdict carries its message's trace on
        for delivery, (record, fresh) in zip(judged, decided, strict=True):
            message = delivery.model
            if record.published:
                log.info(
                    "message %s was already decided (%s by %s); acknowledging it again without "
                    "publishing",
                    message.id,
                    record.verdict,
                    record.instance,
                )
                continue
            if not fresh:
                log.warning(
                    "message %s was decided (%s by %s) but its verdict not published; "
                    "publishing it",
                    message.id,
                    record.verdict,
                    record.instance,
                )
            to_publish.append((message, record))
            contexts.append(delivery.context)
        confirmations = await self.bus.publish_many(
            [self.verdict_of(message, record) for message, record in to_publish],
            contexts=contexts,
        )
        published: list[tuple[ChatMessage, Recorded]] = []
        failed: dict[str, BaseException] = {}
        for (message, record), confirmation in zip(to_publish, confirmations, strict=True):
            if isinstance(confirmation, BaseException):
                failed[message.id] = confirmation
            else:
                published.append((message, record))
        self.store.published_soon(published)
        for _, record in published:
            self.verdicts.add(
                1, {"verdict": record.verdict, "check": record.checks[0] if record.checks else ""}
            )
        for i, delivery in enumerate(deliveries):
            outcomes[i] = failed.get(delivery.model.id)
        return outcomes

    async def judge_batch(
        self,
        deliveries: list[Delivery[ChatMessage]],
        states: list[LoadedState],
        openai_answers: dict[str, OpenAIResult],
    ) -> list[BatchJudgement | None]:
        """The decisions on a batch, in order, each message judged knowing what the batch's
        earlier messages of its author add (`with_earlier`), as if each had been decided and
        written before the next was read; an approved one in a capped room with its claim on a
        place (`_room_claim`). None where already decided."""
        earlier: dict[tuple[str, str], list[Judged]] = {}
        judged: list[BatchJudgement | None] = []
        shows = {room: await self.shows.rules(room) for room in {d.model.room for d in deliveries}}
        for delivery, loaded in zip(deliveries, states, strict=True):
            if loaded.decided is not None:
                judged.append(None)
                continue
            message = delivery.model
            author = (message.room, author_key(message.author_identity))
            state = with_earlier(
                loaded,
                message,
                earlier.get(author, ()),
                recent_window_ms=self.store.recent_window_ms,
                strike_window_ms=self.store.strike_window_ms,
            )
            decision, context = await self.judge(
                delivery, state, openai_answers, shows[message.room]
            )
            outcome = strike_outcome(decision, context, message.created_at, self.settings)
            earlier.setdefault(author, []).append(
                Judged(
                    RecentMessage(message.id, message.created_at, decision.fingerprint),
                    outcome.add_strike,
                    outcome.mute_until_ms,
                )
            )
            claim = self._room_claim(message, decision, context, shows[message.room])
            judged.append((decision, outcome, claim))
        return judged

    async def judge(
        self,
        delivery: Delivery[ChatMessage],
        state: LoadedState,
        openai_answers: dict[str, OpenAIResult],
        show: RoomRules,
    ) -> tuple[Decision, Context]:
        """The decision of every check but the room caps on the delivered message given its
        author's `state` and its show's rules; OpenAI is asked at most once per message
        (answers kept by id)."""
        message = delivery.model
        context = Context(
            normalize(message.body),
            recent=state.recent,
            strikes=state.strikes,
            muted_until_ms=state.muted_until_ms,
            ban=state.ban,
        )
        decision = show.decide(self.pipeline, message, context)
        if decision.approved and self.openai is not None:
            if message.id not in openai_answers:
                # The call may outlast the ack wait: keep the message ours meanwhile.
                async with delivery.keep_alive(self.settings.redeliver_after_s[0] / 3):
                    openai_answers[message.id] = await self.openai.moderate(message.body)
            context = replace(context, openai=openai_answers[message.id])
            decision = show.decide(self.pipeline, message, context)
        return decision, context

    def _room_claim(
        self, message: ChatMessage, decision: Decision, context: Context, show: RoomRules
    ) -> RoomClaim | None:
        """A claim on a place in the room's window when every other check approved and the
        room is capped: by its show's cap (per minute) or else the deployment's (`room_rate`,
        per second). The place is taken as the verdict is recorded (in batch order, atomic
        across instances); past the cap the verdict is `room_rate`'s (no strike, so the
        state the message adds is the same)."""
        default = self.room_rate.cap if self.room_rate is not None else None
        cap = show.cap or default
        if not decision.approved or cap is None:
            return None
        # Every other check approved, so the cap is the only one left to ask: what it says of
        # the first place past the cap.
        past = replace(
            context,
            room_place=cap.limit + 1,
            room_limit=show.cap.limit if show.cap else None,
        )
        busy = self.room_cap.check(message, past)
        assert busy is not None and not busy.strike, "room_rate refuses past the cap, no strike"
        return RoomClaim(cap, Decision((busy,), decision.fingerprint))

    def verdict_of(self, message: ChatMessage, record: Recorded) -> tuple[str, WireModel, str]:
        """What to publish for a recorded verdict: (subject, model, JetStream msg id)."""
        msg_id = verdict_msg_id(message.id)
        if record.approved:
            return subjects.chat_approved(message.room), message, msg_id
        verdict = ModerationVerdict(
            message_id=message.id,
            room=message.room,
            author_identity=message.author_identity,
            verdict="rejected",
            reason=record.reason,
            checks=record.checks,
            decided_at=record.decided_at,
        )
        return subjects.chat_rejected(message.room), verdict, msg_id

    async def consumer(self, subject: str | None = None) -> Consumer[ChatMessage]:
        """The shared durable consumer (of every room unless `subject` narrows it, for tests)."""
        return await self.bus.consumer(
            subject or subjects.all_rooms("chat", "submitted"),
            ChatMessage,
            self.settings.durable,
            backoff_s=self.settings.redeliver_after_s,
        )

    async def run(self, consumer: Consumer[ChatMessage], stop: asyncio.Event) -> None:
        """Handle deliveries until `stop` is set, carrying on after NATS hiccups; a show's
        change (`room.config.<room>`) applies to its rules at once meanwhile."""
        shows = await self.bus.watch(
            subjects.all_rooms("room", "config"),
            ShowConfigEvent,
            self._on_show_config,
            start=time.time(),  # "new" can skip: from a time
        )
        try:
            await self._consume(consumer, stop)
        finally:
            await shows.stop()
            with contextlib.suppress(Exception):
                await self.store.flush_published()

    async def _on_show_config(self, observed: Observed[ShowConfigEvent]) -> None:
        self.shows.follow(observed.model)

    async def _consume(self, consumer: Consumer[ChatMessage], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await consumer.run_batches(self.handle_batch, batch=self.settings.batch, stop=stop)
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
