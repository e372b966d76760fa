"""The dead-letter stream: where a durable consumer files a message it gave up on.

Nothing answered 202 may vanish. When a consumer's handler fails on the last delivery JetStream
allows (`num_delivered >= max_deliver`, see the retry budget in `livestage.retry`), or a payload
never validates, the bus (`Consumer._handle` / `Consumer.fetch`) writes a `DeadLetter` to
`deadletter.<consumer>.<room>` in stream DEADLETTER, counts it in `livestage.bus.dead_lettered
{consumer, reason}`, and only then terminates the original. Operators list and replay dead letters
through the edge (`/api/operator/deadletters`), which uses `DeadLetters` below.

Why in the bus rather than from JetStream's MAX_DELIVERIES advisory
(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`): the advisory carries only the
stream sequence, so a listener would have to fetch the message again (gone if the stream aged it
out) and could never know the error that made it fail; it is also a core-NATS message, lost
whenever the listener is down. The bus holds the message, its headers and the exception at the
moment it gives up, and terminates the original only after JetStream stored the dead letter.
A dead letter's Nats-Msg-Id is `deadletter:<consumer>:<stream>:<seq>`, so a crash between the two
steps cannot file it twice.

Replay publishes the original payload on the original subject with the original headers, except:

- `Nats-Msg-Id` becomes `replay:<dead letter seq>:<original id>`. The original id would be
  dropped by JetStream as a duplicate while it is inside the stream's de-duplication window
  (`NATS_DUPLICATE_WINDOW_S`, 2 minutes), so the replay would silently do nothing; a fresh id per
  dead letter stores it once even if the operator presses replay twice. The payload keeps its
  message `id`, and every consumer is idempotent on that (history stores by id, moderation
  records one verdict per id), so the message is still delivered once.
- `Livestage-Replay-For: <consumer>` addresses it: other durable consumers of the subject ack
  and skip it, and watchers (`Bus.watch`, `Bus.history`) skip it, since they had the original.

After JetStream stored the replay, the dead letter is deleted.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, PubAck
from opentelemetry.metrics import Meter

from livestage import metrics, subjects
from livestage.schemas import DeadLetter, now_ms
from livestage.stored import read_stored

log = logging.getLogger(__name__)

REPLAY_FOR_HEADER = "Livestage-Replay-For"
"""On a replayed message: the one durable consumer it is meant for."""

MAX_ERROR_CHARS = 2000
Reason = Literal["exhausted", "invalid"]
# Headers JetStream sets on what it stores or delivers; a replay must not carry them over.
_SERVER_HEADERS = ("Nats-Msg-Id", "Nats-Expected-", "Nats-Rollup", "Status", "Description")


def is_replay_for_other(msg: Msg, durable: str) -> bool:
    """Whether `msg` is a replay addressed to a consumer other than `durable`."""
    target = (msg.headers or {}).get(REPLAY_FOR_HEADER)
    return target is not None and target != durable


def is_replay(msg: Msg) -> bool:
    return REPLAY_FOR_HEADER in (msg.headers or {})


def error_text(error: BaseException | str) -> str:
    """`Type: message`, cut to what a dead letter keeps."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_CHARS]


def _encode(payload: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def _room_token(subject: str) -> str:
    try:
        return subjects.room_of(subject)
    except ValueError:
        return subjects.UNKNOWN_ROOM


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as the DEADLETTER stream holds it; `seq` is its id for replay/delete."""

    seq: int
    letter: DeadLetter

    @property
    def payload_bytes(self) -> bytes:
        if self.letter.payload_encoding == "base64":
            return base64.b64decode(self.letter.payload)
        return self.letter.payload.encode("utf-8")

    def payload_json(self) -> Any:
        """The payload as JSON when it is JSON, else its text (or base64) as a string."""
        try:
            return json.loads(self.payload_bytes)
        except (ValueError, binascii.Error):
            return self.letter.payload


class DeadLetters:
    """Write, list, replay and delete dead letters through one JetStream context."""

    def __init__(self, js: JetStreamContext, meter: Meter | None = None) -> None:
        """`meter`: where `livestage.bus.dead_lettered` is counted (default: the global one)."""
        self.js = js
        self.stream = subjects.DEADLETTER.name
        self.meter = meter

    async def record(self, msg: Msg, consumer: str, reason: Reason, error: str) -> PubAck:
        """File `msg` (as delivered to durable `consumer`) as a dead letter; raises when
        JetStream did not store it (the caller then leaves the original alone)."""
        meta = msg.metadata
        payload, encoding = _encode(msg.data or b"")
        letter = DeadLetter(
            consumer=consumer,
            reason=reason,
            error=error_text(error),
            subject=msg.subject,
            room=_room_token(msg.subject),
            headers={str(k): str(v) for k, v in (msg.headers or {}).items()},
            payload=payload,
            payload_encoding=encoding,
            deliveries=int(meta.num_delivered or 0),
            stream=meta.stream or "",
            stream_seq=int(meta.sequence.stream or 0),
            stored_at=int(meta.timestamp.timestamp() * 1000),
            failed_at=now_ms(),
        )
        dedupe_id = f"deadletter:{consumer}:{letter.stream}:{letter.stream_seq}"
        ack = await self.js.publish(
            subjects.deadletter(consumer, letter.room),
            letter.to_json(),
            headers={"Nats-Msg-Id": dedupe_id},
        )
        metrics.counter(metrics.BUS_DEAD_LETTERED, self.meter).add(
            1, {"consumer": consumer, "reason": reason}
        )
        log.error(
            "dead letter: %s gave up on %s (stream %s seq %d) after %d deliveries (%s): %s",
            consumer,
            msg.subject,
            letter.stream,
            letter.stream_seq,
            letter.deliveries,
            reason,
            letter.error,
        )
        return ack

    async def get(self, seq: int) -> StoredDeadLetter | None:
        """The dead letter with sequence `seq`, or None when there is none."""
        try:
            raw = await self.js.get_msg(self.stream, seq)
        except nats.js.errors.NotFoundError:
            return None
        if raw.data is None or not (raw.subject or "").startswith("deadletter."):
            return None
        return StoredDeadLetter(seq, DeadLetter.from_json(raw.data))

    async def list(
        self, *, consumer: str | None = None, room: str | None = None, limit: int = 50
    ) -> list[StoredDeadLetter]:
        """The newest `limit` dead letters (newest first), of one consumer and/or room."""
        newest: deque[StoredDeadLetter] = deque(maxlen=limit)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        subject = subjects.deadletters(consumer, room)
        async for msg in read_stored(self.js, subject, config, stream=self.stream):
            letter = DeadLetter.from_json(msg.data)
            newest.append(StoredDeadLetter(msg.metadata.sequence.stream, letter))
        return list(reversed(newest))

    async def replay(self, stored: StoredDeadLetter) -> PubAck:
        """Publish the original again for its consumer (see the module docstring), then delete
        the dead letter. Raises when JetStream did not store the replay (the letter stays)."""
        letter = stored.letter
        headers = {
            key: value
            for key, value in letter.headers.items()
            if not key.startswith(_SERVER_HEADERS) and key != REPLAY_FOR_HEADER
        }
        original_id = letter.headers.get("Nats-Msg-Id", f"{letter.stream}:{letter.stream_seq}")
        headers["Nats-Msg-Id"] = f"replay:{stored.seq}:{original_id}"
        headers[REPLAY_FOR_HEADER] = letter.consumer
        ack = await self.js.publish(letter.subject, stored.payload_bytes, headers=headers)
        await self.delete(stored.seq)
        log.info(
            "replayed dead letter %d for %s on %s (stream seq %d)",
            stored.seq,
            letter.consumer,
            letter.subject,
            ack.seq,
        )
        return ack

    async def delete(self, seq: int) -> bool:
        """Delete dead letter `seq`; False when it was not there."""
        try:
            return bool(await self.js.delete_msg(self.stream, seq))
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.APIError as error:
            # JSSequenceNotFound, JSNoMessageFound, JSStreamMsgDeleteFailed: not there
            if error.err_code in (10043, 10037, 10057):
                return False
            raise

    async def counts(self) -> dict[str, int]:
        """Dead letters held, per consumer."""
        info = await self.js.stream_info(self.stream, subjects_filter="deadletter.>")
        by_consumer: dict[str, int] = {}
        for subject, count in (info.state.subjects or {}).items():
            consumer = subject.split(".")[1]
            by_consumer[consumer] = by_consumer.get(consumer, 0) + int(count)
        return by_consumer
