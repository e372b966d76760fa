"""NATS and JetStream helpers shared by every service.

- `Bus.connect(settings, name)` connects with reconnects (forever by default).
- `Bus.ensure_streams()` declares one stream per domain (CHAT, HOST, STAGE, ROOM) idempotently:
  file storage, bounded by age and bytes, with a de-duplication window.
- `Bus.publish(subject, model)` stores a wire model in JetStream with `Nats-Msg-Id` set to the
  subject and the message id, so publishing the same message twice on one subject stores it
  once, while the same id on another subject of the stream (a message approved under its
  submitted id, a verdict on it) is its own message; it returns only after
  JetStream acknowledged it, and carries the W3C trace context in the headers.
- `Bus.publish_many(items)` stores several at once with JetStream async publishes (sent in
  order, confirmed together): one outcome per item, a PubAck or the error that item met.
- `Bus.consumer(...)` gives a typed durable pull consumer (explicit ack, max-deliver, backoff),
  whose lag (JetStream's num_pending at each fetch) the NATS_CONSUMER_PENDING gauge reports.
  Unless told otherwise its deliveries cover the retry budget (`NATS_RETRY_BUDGET_S`, see
  `livestage.retry`). `Consumer.run(handler)` acks after the handler returns and lets a failure
  be redelivered after the backoff; when the last allowed delivery fails too, or a payload does
  not validate (it never can succeed), the message goes to the dead-letter stream
  (`livestage.deadletter`) and only then is terminated: nothing is dropped silently. A replay
  addressed to another durable consumer is acked and skipped.
  `Consumer.run_batches(handler)` hands the handler a batch of deliveries at once (for
  handlers that load and write state for many messages in one round trip) and acks each one
  the handler reports done.
  `Delivery.keep_alive(every_s)` sends work-in-progress acks while a slow handler runs.
- `Bus.watch(...)` follows a subject with an ephemeral ordered push consumer (no acks, gone
  when the watcher is): for a process that needs what happens while it lives, plus a chosen
  amount of the past (`start="new"`, `"last"` per subject, or an epoch time), and nothing it
  must not replay (a new host job must not obey an old operator command). Watchers and
  `Bus.history` skip dead-letter replays: they had the original.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pydantic import ValidationError

from livestage import metrics, subjects
from livestage.deadletter import DeadLetters, error_text, is_replay, is_replay_for_other
from livestage.retry import LADDER_S, retry_policy
from livestage.schemas import WireModel
from livestage.settings import NatsSettings, mask_url
from livestage.stored import read_stored

log = logging.getLogger(__name__)
tracer = trace.get_tracer("livestage.bus")

M = TypeVar("M", bound=WireModel)

DEFAULT_BACKOFF_S: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0)
DEFAULT_MAX_DELIVER = 5


# Lag of each durable consumer in this process, as JetStream reported it with the last fetch:
# observed by the NATS_CONSUMER_PENDING gauge (registered once, on the first consumer).
_pending: dict[str, int] = {}
_pending_gauge: list[object] = []


def _observe_pending() -> list[tuple[float, dict[str, str]]]:
    return [(float(count), {"consumer": name}) for name, count in sorted(_pending.items())]


def _track_pending(durable: str, count: int) -> None:
    if not _pending_gauge:
        _pending_gauge.append(metrics.gauge(metrics.NATS_CONSUMER_PENDING, _observe_pending))
    _pending[durable] = count


class BusUnavailable(RuntimeError):
    """NATS or JetStream could not take the message (not connected, timed out, no stream)."""


class PublishUnconfirmed(BusUnavailable):
    """JetStream did not acknowledge in time: the message may or may not be stored.

    Publishing it again with the same id is safe: within the stream's de-duplication window
    (`NATS_DUPLICATE_WINDOW_S`) JetStream stores it once.
    """


class HandBack(Exception):  # noqa: N818 - an instruction to the consumer, not a failure
    """Raised by a consumer's handler for a delivery that another consumer of the same durable
    should take: it is nak'ed with `delay_s` (JetStream hands it out again then, to whichever
    consumer asks first) instead of acked. It still counts as a delivery: on the last one it is
    dead-lettered, as a failure would be, with `reason` as its error."""

    def __init__(self, reason: str, delay_s: float) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


def message_id_of(model: WireModel) -> str:
    """The de-duplication id of a wire model: its `id`, or `message_id` for verdicts."""
    for attribute in ("id", "message_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    raise ValueError(f"{type(model).__name__} has no id to de-duplicate on; pass msg_id=")


def _inject_trace_headers(
    headers: dict[str, str], context: otel_context.Context | None = None
) -> dict[str, str]:
    propagate.inject(headers, context=context)
    return headers


def _extract_trace_context(msg: Msg) -> otel_context.Context:
    return propagate.extract(dict(msg.headers or {}))


class Bus:
    """One service's connection to NATS and JetStream."""

    def __init__(self, nc: NatsClient, settings: NatsSettings) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.settings = settings
        self.dead_letters = DeadLetters(self.js)

    @classmethod
    async def connect(cls, settings: NatsSettings, name: str) -> Bus:
        """Connect to NATS; raises BusUnavailable with the URL if the first connect fails."""

        async def on_error(error: Exception) -> None:
            log.warning(
                "%s: NATS at %s: %s (retrying)", name, mask_url(settings.url), mask_url(str(error))
            )

        client: list[NatsClient] = []

        async def on_disconnected() -> None:
            if client and (client[0].is_draining or client[0].is_closed):
                return  # our own close()
            log.warning("%s: disconnected from NATS; reconnecting", name)

        async def on_reconnected() -> None:
            log.info("nats reconnected (%s)", name)

        try:
            nc = await nats.connect(
                servers=settings.servers,
                name=name,
                connect_timeout=settings.connect_timeout_s,
                max_reconnect_attempts=settings.max_reconnect_attempts,
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
            )
        except (TimeoutError, OSError, nats.errors.Error) as error:
            raise BusUnavailable(
                f"cannot connect to NATS at {mask_url(settings.url)}: {mask_url(repr(error))}. "
                "Is nats-server running with -js? (`make run` starts one.)"
            ) from error
        client.append(nc)
        return cls(nc, settings)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Drain (finish in-flight work) and close; just close when NATS is gone or slow.

        A drain needs a live server: with NATS already stopped (a Procfile runner stops
        everything at once) it would wait on reconnects forever, and a service must still stop.
        """
        if self.nc.is_closed:
            return
        if self.nc.is_connected:
            try:
                await asyncio.wait_for(self.nc.drain(), timeout_s)
                return
            except (TimeoutError, nats.errors.Error, OSError) as error:
                log.warning("NATS drain did not finish (%r); closing", error)
        try:
            await self.nc.close()
        except OSError as error:
            # nats-py flushes its socket while closing; a connection that is already lost
            # (NATS stopped first) raises ConnectionResetError there, yet the client is closed.
            log.debug("NATS close on a lost connection: %r", error)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def ensure_streams(self, streams: Sequence[subjects.Stream] = subjects.STREAMS) -> None:
        """Create or update every domain stream and the dead-letter stream (kept longer,
        `NATS_DEADLETTER_MAX_AGE_S`); safe to call from every service at start."""
        dead_letter = (subjects.DEADLETTER, self.settings.deadletter_max_age_s)
        for stream, max_age_s in [
            *((stream, self.settings.stream_max_age_s) for stream in streams),
            dead_letter,
        ]:
            config = StreamConfig(
                name=stream.name,
                subjects=stream.subjects,
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                max_age=float(max_age_s),
                max_bytes=self.settings.stream_max_bytes,
                duplicate_window=float(self.settings.duplicate_window_s),
            )
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError as error:
                # Exists with a different config (e.g. new limits): update it in place.
                if error.err_code != 10058:  # JSStreamNameExistErr
                    raise
                await self.js.update_stream(config)

    async def publish(
        self,
        subject: str,
        model: WireModel,
        *,
        msg_id: str | None = None,
        timeout_s: float = 2.0,
    ) -> PubAck:
        """Store `model` in JetStream; returns the ack (`duplicate` is True on a re-publish)."""
        # JetStream de-duplicates per stream, not per subject: scope the id to the subject.
        dedupe_id = msg_id or f"{subject}:{message_id_of(model)}"
        with tracer.start_as_current_span(
            f"publish {subject}",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "messaging.message.id": dedupe_id,
            },
        ):
            headers = _inject_trace_headers({"Nats-Msg-Id": dedupe_id})
            try:
                return await self.js.publish(
                    subject, model.to_json(), timeout=timeout_s, headers=headers
                )
            except TimeoutError as error:  # nats.errors.TimeoutError is one too
                raise PublishUnconfirmed(
                    f"JetStream did not confirm {subject} within {timeout_s} s: {error!r}"
                ) from error
            except (nats.errors.Error, OSError) as error:
                raise BusUnavailable(f"JetStream did not store {subject}: {error!r}") from error

    async def publish_many(
        self,
        items: Sequence[tuple[str, WireModel, str]],
        *,
        timeout_s: float = 2.0,
        contexts: Sequence[otel_context.Context | None] | None = None,
    ) -> list[PubAck | BusUnavailable]:
        """Store each `(subject, model, msg_id)` with a JetStream async publish: all are sent
        (in order, so one subject's stream order is the items' order), then their
        confirmations awaited together for up to `timeout_s`. One outcome per item: its PubAck,
        or the `BusUnavailable` (`PublishUnconfirmed` for no answer in time) it met; publishing
        an unconfirmed one again with the same `msg_id` stores it once.

        `contexts`: per item, the trace context its headers carry (a batch handler passes each
        delivery's `context`, so every message's trace goes on past the batch); default: the
        current one for all."""
        futures: list[asyncio.Future[PubAck] | BusUnavailable] = []
        for i, (subject, model, msg_id) in enumerate(items):
            context = contexts[i] if contexts is not None else None
            headers = _inject_trace_headers({"Nats-Msg-Id": msg_id}, context)
            try:
                futures.append(
                    await self.js.publish_async(
                        subject, model.to_json(), headers=headers, wait_stall=timeout_s
                    )
                )
            except (nats.errors.Error, OSError, TimeoutError) as error:
                futures.append(BusUnavailable(f"JetStream did not take {subject}: {error!r}"))

        async def confirmed(
            subject: str, future: asyncio.Future[PubAck] | BusUnavailable
        ) -> PubAck | BusUnavailable:
            if isinstance(future, BusUnavailable):
                return future
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError as error:
                return PublishUnconfirmed(
                    f"JetStream did not confirm {subject} within {timeout_s} s: {error!r}"
                )
            except (nats.errors.Error, OSError) as error:
                return BusUnavailable(f"JetStream did not store {subject}: {error!r}")

        return list(
            await asyncio.gather(
                *(confirmed(item[0], f) for item, f in zip(items, futures, strict=True))
            )
        )

    async def consumer(
        self,
        subject: str,
        model_type: type[M],
        durable: str,
        *,
        max_deliver: int | None = None,
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
        budget_s: float | None = None,
        max_ack_pending: int = 256,
        only_new: bool = False,
    ) -> Consumer[M]:
        """A durable, explicit-ack pull consumer of `subject`, decoding into `model_type`.

        Without `max_deliver`, the deliveries cover the retry budget (`budget_s`, by default
        `NATS_RETRY_BUDGET_S`): `backoff_s` gives the first waits (the first is the ack
        deadline), continued up the ladder to `NATS_RETRY_MAX_BACKOFF_S` (`livestage.retry`).
        With `max_deliver`, `backoff_s` is used as given. Either way the last failed delivery
        becomes a dead letter.

        `only_new`: a consumer created now starts after the messages already stored (for
        instructions that make no sense to replay, such as operator commands); it then keeps
        its place like any durable consumer.
        """
        if max_deliver is None:
            policy = retry_policy(
                self.settings.retry_budget_s if budget_s is None else budget_s,
                first_s=backoff_s[0],
                steps_s=backoff_s[1:] or LADDER_S,
                cap_s=self.settings.retry_max_backoff_s,
            )
            max_deliver, backoff_s = policy.max_deliver, policy.backoff_s
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.NEW if only_new else DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=max_deliver,
            # JetStream requires backoff to have fewer entries than max_deliver; ack_wait is the
            # first backoff step (backoff overrides it).
            backoff=list(backoff_s)[: max(max_deliver - 1, 1)],
            ack_wait=float(backoff_s[0]) if backoff_s else 30.0,
            max_ack_pending=max_ack_pending,
            filter_subject=subject,
        )
        subscription = await self.js.pull_subscribe(subject, durable=durable, config=config)
        # A durable that already existed keeps the limit it was created with: the last delivery
        # (the one to dead-letter) is the server's, not ours.
        actual = (await subscription.consumer_info()).config.max_deliver or max_deliver
        if actual != max_deliver:
            log.warning(
                "durable consumer %s keeps max_deliver=%d from its creation (settings give %d); "
                "delete it (nats consumer rm) to apply the retry budget",
                durable,
                actual,
                max_deliver,
            )
        return Consumer(subscription, model_type, subject, durable, actual, self.dead_letters)

    async def watch(
        self,
        subject: str,
        model_type: type[M],
        handler: Callable[[Observed[M]], Awaitable[Any]],
        *,
        start: Literal["new", "last"] | float = "new",
    ) -> Watch:
        """Follow `subject` from `start` with an ephemeral ordered consumer, calling `handler`
        for each decoded message in order.

        `start`: "new" (only what is published from now on), "last" (the last message of each
        subject, then new ones) or an epoch time in seconds (everything stored since then).
        Invalid payloads are logged and skipped; a failing handler is logged and the watch
        goes on (there is no redelivery: use `consumer()` where every message must be handled).
        """
        config = ConsumerConfig()
        if start == "new":
            config.deliver_policy = DeliverPolicy.NEW
        elif start == "last":
            config.deliver_policy = DeliverPolicy.LAST_PER_SUBJECT
        else:
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = datetime.fromtimestamp(float(start), UTC)

        async def on_message(msg: Msg) -> None:
            if is_replay(msg):
                return
            try:
                model = model_type.from_json(msg.data)
            except ValidationError as error:
                log.error(
                    "skipping invalid %s on %s: %s",
                    model_type.__name__,
                    msg.subject,
                    error.errors(include_url=False),
                )
                return
            observed = Observed(
                model=model,
                subject=msg.subject,
                stored_at=msg.metadata.timestamp.timestamp(),
                context=_extract_trace_context(msg),
            )
            try:
                await handler(observed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch handler failed on %s", msg.subject)

        subscription = await self.js.subscribe(
            subject, cb=on_message, ordered_consumer=True, config=config
        )
        return Watch(subscription)

    async def history(
        self, subject: str, model_type: type[M], *, since: float, limit: int = 1000
    ) -> list[Observed[M]]:
        """What is stored on `subject` since epoch time `since` (oldest first, at most `limit`
        of the newest), read once through an ephemeral pull consumer; invalid ones skipped."""
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=datetime.fromtimestamp(since, UTC),
        )
        return (await self._read(subject, model_type, config))[-limit:]

    async def latest(self, subject: str, model_type: type[M]) -> list[Observed[M]]:
        """The last message stored on each subject `subject` matches (a wildcard: one per room),
        read once; what a service needs in hand before it acts, where `watch(start="last")`
        would deliver it some time later."""
        config = ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
        return await self._read(subject, model_type, config)

    async def _read(
        self, subject: str, model_type: type[M], config: ConsumerConfig
    ) -> list[Observed[M]]:
        found: list[Observed[M]] = []
        async for msg in read_stored(self.js, subject, config):
            if is_replay(msg):
                continue
            try:
                model = model_type.from_json(msg.data)
            except ValidationError:
                log.error("skipping invalid %s on %s", model_type.__name__, msg.subject)
                continue
            found.append(
                Observed(
                    model=model,
                    subject=msg.subject,
                    stored_at=msg.metadata.timestamp.timestamp(),
                    context=_extract_trace_context(msg),
                )
            )
        return found

    async def request(
        self, subject: str, model: WireModel, reply_type: type[M], *, timeout_s: float = 2.0
    ) -> M:
        """Core-NATS request/reply with a typed answer; BusUnavailable when nobody answers."""
        headers = _inject_trace_headers({})
        try:
            reply = await self.nc.request(
                subject, model.to_json(), timeout=timeout_s, headers=headers
            )
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BusUnavailable(f"no answer on {subject}: {error!r}") from error
        return reply_type.from_json(reply.data)


@dataclass
class Observed(Generic[M]):
    """One message seen by a `Bus.watch`: decoded, with when JetStream stored it."""

    model: M
    subject: str
    stored_at: float
    """Epoch seconds at which JetStream stored the message (its publish time)."""
    context: otel_context.Context


class Watch:
    """A running `Bus.watch`; `stop()` ends it (the server drops the ephemeral consumer)."""

    def __init__(self, subscription: JetStreamContext.PushSubscription) -> None:
        self.subscription = subscription

    async def stop(self) -> None:
        try:
            await self.subscription.unsubscribe()
        except (nats.errors.Error, OSError) as error:
            log.debug("watch unsubscribe: %r", error)


@dataclass
class Delivery(Generic[M]):
    """One message from a consumer, decoded, with its JetStream handle."""

    model: M
    msg: Msg
    subject: str
    num_delivered: int
    context: otel_context.Context

    @property
    def stream_seq(self) -> int:
        """The message's sequence in its stream: the order JetStream stored it in."""
        return int(self.msg.metadata.sequence.stream)

    async def ack(self) -> None:
        await self.msg.ack()

    async def nak(self, delay_s: float | None = None) -> None:
        await self.msg.nak(delay=delay_s)

    async def in_progress(self) -> None:
        """Tell JetStream the handler is still at work: its ack wait starts over."""
        await self.msg.in_progress()

    @contextlib.asynccontextmanager
    async def keep_alive(self, every_s: float) -> AsyncIterator[None]:
        """Send `in_progress()` every `every_s` while the block runs, so a handler slower than
        the consumer's ack wait is not redelivered (and run a second time) meanwhile.

        Pick `every_s` well under the ack wait (a third of it). A progress ack that cannot be
        sent (NATS reconnecting) is logged; the block goes on.
        """

        async def beat() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.in_progress()
                except (nats.errors.Error, OSError) as error:
                    log.warning("in-progress ack of %s not sent: %r", self.subject, error)

        task = asyncio.create_task(beat(), name=f"keep-alive:{self.subject}")
        try:
            yield
        finally:
            task.cancel()  # not awaited: a cancel of the caller must not be swallowed here


Handler = Callable[[Delivery[M]], Awaitable[Any]]
BatchHandler = Callable[[list[Delivery[M]]], Awaitable[Sequence[BaseException | None]]]
"""Handles a batch of deliveries; per delivery, in order: None (done: ack it) or the error
that failed it (redelivered, or dead-lettered after the last delivery)."""


class Consumer(Generic[M]):
    """A typed view of a durable JetStream pull subscription."""

    def __init__(
        self,
        subscription: JetStreamContext.PullSubscription,
        model_type: type[M],
        subject: str,
        durable: str = "",
        max_deliver: int = DEFAULT_MAX_DELIVER,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.subscription = subscription
        self.model_type = model_type
        self.subject = subject
        self.durable = durable
        self.max_deliver = max_deliver
        self.dead_letters = dead_letters

    async def fetch(self, batch: int = 10, timeout_s: float = 1.0) -> list[Delivery[M]]:
        """Up to `batch` decoded deliveries; [] when none arrived in time.

        Payloads that fail validation are dead-lettered (reason `invalid`) and terminated
        (never redelivered); replays meant for another durable consumer are acked and skipped.
        """
        try:
            msgs = await self.subscription.fetch(batch, timeout=timeout_s)
        except (TimeoutError, nats.errors.TimeoutError):
            if self.durable:
                _track_pending(self.durable, 0)  # nothing came within the wait: no lag
            return []
        if self.durable and msgs:
            _track_pending(self.durable, msgs[-1].metadata.num_pending)
        deliveries: list[Delivery[M]] = []
        for msg in msgs:
            if self.durable and is_replay_for_other(msg, self.durable):
                await msg.ack()
                continue
            try:
                model = self.model_type.from_json(msg.data)
            except ValidationError as error:
                problems = error.errors(include_url=False, include_input=False)
                log.error("invalid %s on %s: %s", self.model_type.__name__, msg.subject, problems)
                if await self._dead_letter(msg, "invalid", f"{error.title}: {problems}"):
                    await msg.term()
                continue
            deliveries.append(
                Delivery(
                    model=model,
                    msg=msg,
                    subject=msg.subject,
                    num_delivered=msg.metadata.num_delivered,
                    context=_extract_trace_context(msg),
                )
            )
        return deliveries

    async def run(
        self, handler: Handler[M], *, batch: int = 10, stop: asyncio.Event | None = None
    ) -> None:
        """Handle deliveries until cancelled or `stop` is set: ack on success, leave for
        redelivery on error.

        Prefer `stop` to cancelling: it is checked before each delivery and between fetches
        (so it takes effect within a fetch timeout, 1 s); deliveries of the batch left
        unhandled are redelivered after the ack wait. A cancel that lands just as a fetch times
        out can hang inside nats-py's `next_msg` on Python 3.11 (its nested `wait_for` loses the
        cancellation), which would keep a service from stopping.
        """
        while stop is None or not stop.is_set():
            for delivery in await self.fetch(batch):
                if stop is not None and stop.is_set():
                    break
                await self._handle(delivery, handler)

    async def run_concurrently(
        self,
        handler: Handler[M],
        *,
        batch: int = 64,
        stop: asyncio.Event | None = None,
        drain_s: float = 5.0,
    ) -> None:
        """Like `run`, but up to `batch` deliveries are handled at the same time.

        For handlers that wait on the network (a send per message): throughput is bounded by
        `batch` in flight, not by one round trip per message, and a slow delivery holds up
        nobody (a free slot is refilled at once). Each delivery is acked on its own once its
        handler returned; order is not kept, so use it only where consumers order by a field
        (chat by createdAt), not by arrival.

        With `stop` set it fetches no more (within a fetch timeout, 1 s), gives the handlers in
        flight `drain_s` to finish and be acked, cancels the rest (redelivered later) and
        returns; prefer it to cancelling, for the reason given in `run`.
        """
        slots = asyncio.Semaphore(batch)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()

        try:
            while stop is None or not stop.is_set():
                await slots.acquire()
                free = 1
                while free < batch and not slots.locked():
                    await slots.acquire()
                    free += 1
                deliveries = await self.fetch(free)
                for _ in range(free - len(deliveries)):
                    slots.release()
                for delivery in deliveries:
                    task = asyncio.create_task(self._handle(delivery, handler))
                    running.add(task)
                    task.add_done_callback(finished)
            if running:
                await asyncio.wait(set(running), timeout=drain_s)
        finally:
            for task in list(running):
                task.cancel()

    async def run_batches(
        self, handler: BatchHandler[M], *, batch: int = 64, stop: asyncio.Event | None = None
    ) -> None:
        """Like `run`, but the handler gets up to `batch` deliveries at once (what one fetch
        brought) and says per delivery whether it is done; done ones are acked, the others
        left for redelivery (or dead-lettered on their last delivery). A handler that raises
        fails the whole batch. Stop with `stop`, for the reason given in `run`."""
        while stop is None or not stop.is_set():
            deliveries = await self.fetch(batch)
            if not deliveries:
                continue
            with tracer.start_as_current_span(
                f"process batch {self.subject}",
                kind=trace.SpanKind.CONSUMER,
                links=[
                    trace.Link(span_context)
                    for d in deliveries
                    if (
                        span_context := trace.get_current_span(d.context).get_span_context()
                    ).is_valid
                ],
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": self.subject,
                    "messaging.batch.message_count": len(deliveries),
                },
            ) as span:
                # Each message also gets a span in its own trace (a child of its publisher's),
                # and its `context` becomes that span's: what the handler publishes for it
                # (`Bus.publish_many(contexts=...)`) continues the message's trace.
                batch_link = [trace.Link(span.get_span_context())]
                own_spans = []
                for delivery in deliveries:
                    own = tracer.start_span(
                        f"process {delivery.subject}",
                        context=delivery.context,
                        kind=trace.SpanKind.CONSUMER,
                        links=batch_link,
                        attributes={
                            "messaging.system": "nats",
                            "messaging.destination.name": delivery.subject,
                        },
                    )
                    delivery.context = trace.set_span_in_context(own, delivery.context)
                    own_spans.append(own)
                try:
                    outcomes: Sequence[BaseException | None] = await handler(deliveries)
                except asyncio.CancelledError:
                    for own in own_spans:
                        own.end()
                    raise
                except Exception as error:
                    span.record_exception(error)
                    outcomes = [error] * len(deliveries)
                for delivery, outcome, own in zip(deliveries, outcomes, own_spans, strict=True):
                    if outcome is None:
                        await delivery.ack()
                    else:
                        own.record_exception(outcome)
                        await self._failed(delivery, outcome)
                    own.end()

    async def _handle(self, delivery: Delivery[M], handler: Handler[M]) -> None:
        with tracer.start_as_current_span(
            f"process {delivery.subject}",
            context=delivery.context,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": delivery.subject,
            },
        ) as span:
            try:
                await handler(delivery)
            except asyncio.CancelledError:
                raise
            except HandBack as handback:
                if delivery.num_delivered < self.max_deliver:
                    log.debug("%s handed back (%s)", delivery.subject, handback)
                    await delivery.nak(handback.delay_s)
                else:
                    await self._failed(delivery, handback)
                return
            except Exception as error:
                span.record_exception(error)
                await self._failed(delivery, error)
                return
            await delivery.ack()

    async def _failed(self, delivery: Delivery[M], error: BaseException) -> None:
        """A delivery its handler could not finish: left for redelivery (no ack: JetStream
        redelivers after the consumer's backoff), or dead-lettered if it was the last."""
        if delivery.num_delivered < self.max_deliver:
            log.error(
                "handler failed on %s (delivery %d of %d); it will be redelivered",
                delivery.subject,
                delivery.num_delivered,
                self.max_deliver,
                exc_info=error,
            )
        elif await self._dead_letter(delivery.msg, "exhausted", error_text(error)):
            await delivery.msg.term()

    async def _dead_letter(
        self, msg: Msg, reason: Literal["exhausted", "invalid"], error: str
    ) -> bool:
        """File `msg` in the dead-letter stream; True when it is stored there (the caller then
        terminates the original). When it cannot be stored the original is left alone: JetStream
        redelivers it if deliveries remain (another try), else it is logged as lost."""
        if self.dead_letters is None or not self.durable:
            log.error(
                "%s on %s: %s (no dead-letter stream for this consumer)", reason, msg.subject, error
            )
            return True
        try:
            await self.dead_letters.record(msg, self.durable, reason, error)
        except (nats.errors.Error, OSError, TimeoutError) as record_error:
            log.error(
                "could not file %s on %s as a dead letter (%r); %s",
                reason,
                msg.subject,
                record_error,
                "it will be redelivered"
                if msg.metadata.num_delivered < self.max_deliver
                else "JetStream will not deliver it again: LOST",
            )
            return False
        return True

    async def pending(self) -> int:
        """Messages of the stream this consumer has not been handed yet (its lag)."""
        info = await self.subscription.consumer_info()
        return int(info.num_pending or 0)

    async def unsubscribe(self) -> None:
        await self.subscription.unsubscribe()
