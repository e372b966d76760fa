"""A local double of the OpenAI Realtime WebSocket API (GA event names), for the real plugin.

Start it and point ``livekit-plugins-openai`` at it::

    async with OpenAIRealtimeDouble() as rt:
        model = RealtimeModel(model="gpt-realtime-2", voice="cedar",
                              base_url=rt.base_url, api_key="test")   # http://127.0.0.1:P/v1
        ...
        await rt.wait_for_event("response.cancel")        # the plugin sent it
        assert rt.responses[-1].status == "cancelled"     # and the double stopped streaming

The plugin opens ``ws://127.0.0.1:P/v1/realtime?model=...`` with ``Authorization: Bearer
<key>``. The double answers like the real service:

- on connect ``session.created``; ``session.update`` → ``session.updated`` (merged session);
- ``conversation.item.create`` → ``conversation.item.added`` then ``conversation.item.done``
  (same item id; ``previous_item_id`` honoured); ``conversation.item.delete`` →
  ``conversation.item.deleted``; ``conversation.item.truncate`` →
  ``conversation.item.truncated``; ``input_audio_buffer.append/commit/clear`` are kept and
  acknowledged (``committed`` / ``cleared``);
- ``response.create`` → ``response.created`` (``metadata`` echoed, so the plugin can match its
  ``client_event_id``), ``response.output_item.added``, ``conversation.item.added``,
  ``response.content_part.added`` (audio), then ``response.output_audio_transcript.delta`` and
  ``response.output_audio.delta`` (base64 PCM16, 24 kHz mono, ``chunk_ms`` per delta) paced by
  ``pace``, then ``response.output_audio.done``, ``response.output_audio_transcript.done``,
  ``response.content_part.done``, ``response.output_item.done``, ``conversation.item.done`` and
  ``response.done`` with ``usage`` (input/output tokens with text/audio details);
- a second ``response.create`` while one streams → ``error``
  ``conversation_already_has_active_response`` (as the real API does);
- ``response.cancel`` → streaming stops, ``response.output_item.done`` (``incomplete``) and
  ``response.done`` with ``status: "cancelled"``; with nothing active → the real API's
  ``Cancellation failed: no active response found`` error.

The reply is speech (``espeak-ng``, see ``audio.speech``) of a text that is ``config.reply``
(a string, or a function of ``ReplyContext``) or by default derived from the last user item.
Everything is configurable at runtime through ``rt.config`` (a ``RealtimeConfig``):
``first_audio_delay`` (seconds between ``response.created`` and the first audio, e.g. 0.3 for
the overhead benchmark), ``pace`` (1.0 real time, 4.0 four times faster, 0 no pacing),
``chunk_ms``, ``voice`` ("espeak" or "tone").

What it records: ``rt.requests`` (each WebSocket handshake: path, query, headers),
``rt.events`` (every client event, in order, as parsed JSON), ``rt.sent`` (every server event;
audio payloads replaced by their byte count), ``rt.responses`` (one ``ResponseRecord`` per
``response.create``: text, audio sent, status, timings), ``rt.protocol_errors`` (client events
that do not validate against the ``openai`` package's GA models, and any server event of ours
that would not — both should stay empty).

Faults (``rt.fail(Fault.X, times=None)``, see ``base``): ``HTTP_500`` / ``HTTP_401`` reject the
handshake; ``HANG`` never answers it; ``SILENT`` accepts it and then never sends a thing;
``AUTH_ERROR_EVENT`` accepts it, sends an ``invalid_api_key`` error event and closes;
``CLOSE_MID_STREAM`` accepts it and drops the TCP connection after ``config.close_after_chunks``
audio deltas of its first response.

Standalone: ``python -m tests.doubles.openai_realtime --port 8765``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import WSMsgType, web
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter, ValidationError

from tests.doubles.audio import Voice, speech
from tests.doubles.base import (
    DoubleServer,
    Fault,
    error_response,
    log,
    openai_refusal,
    serve_forever,
)

SAMPLE_RATE = 24000
_CLIENT_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)
_SERVER_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass
class ReplyContext:
    """What a reply function may look at."""

    user_text: str | None
    """Text of the last user message in the conversation, if any."""
    instructions: str | None
    """``response.instructions`` of the ``response.create``, else the session's."""
    items: list[dict[str, Any]]
    """The conversation as the double holds it (OpenAI item dicts)."""


def default_reply(ctx: ReplyContext) -> str:
    if ctx.user_text:
        return f"Thanks for the message. You said: {ctx.user_text}"
    return "Hello everyone, welcome to the stream."


@dataclass
class RealtimeConfig:
    """How the double answers; change fields at any time (the next response uses them)."""

    reply: str | Callable[[ReplyContext], str] = default_reply
    first_audio_delay: float = 0.0
    """Seconds between ``response.created`` and the first audio delta."""
    pace: float = 1.0
    """Audio speed against the clock: 1.0 real time, 2.0 twice as fast, 0 as fast as possible."""
    chunk_ms: int = 100
    voice: Voice = "espeak"
    close_after_chunks: int = 3
    """For ``Fault.CLOSE_MID_STREAM``: audio deltas sent before the connection drops."""
    audio_tokens_per_second: float = 10.0
    """For ``usage``: an approximation of how the service counts audio tokens."""


@dataclass
class ResponseRecord:
    """One ``response.create`` and what became of it."""

    id: str
    client_event_id: str | None
    text: str = ""
    transcript_sent: str = ""
    transcript_times: list[tuple[float, str]] = field(default_factory=list)
    """(`time.time()` just before it was sent, delta) of each transcript delta."""
    audio_bytes_sent: int = 0
    status: str = "in_progress"
    """``in_progress``, ``completed``, ``cancelled``, ``dropped`` (connection lost) or
    ``failed`` (the double itself failed, e.g. a reply function raised)."""
    created_at: float = field(default_factory=time.monotonic)
    first_audio_at: float | None = None
    done_at: float | None = None
    usage: dict[str, Any] | None = None

    @property
    def audio_seconds_sent(self) -> float:
        return self.audio_bytes_sent / 2 / SAMPLE_RATE


class _Connection:
    """One WebSocket: its session, conversation and the response that may be streaming."""

    def __init__(
        self,
        double: OpenAIRealtimeDouble,
        request: web.Request,
        ws: web.WebSocketResponse,
        model: str,
    ) -> None:
        self.double = double
        self.request = request
        self.ws = ws
        self.send_lock = asyncio.Lock()
        self.conversation_id = _id("conv")
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": _id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}},
                "output": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "voice": "marin"},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
        }
        self.items: list[dict[str, Any]] = []
        self.input_audio = bytearray()
        self.active: tuple[ResponseRecord, asyncio.Task[None]] | None = None
        self.drop_after_chunks: int | None = None

    # -- sending -----------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        event = {"event_id": _id("event"), **event}
        self.double._check_server_event(event)
        recorded = event
        if event["type"] == "response.output_audio.delta":
            recorded = {**event, "delta": f"<{len(base64.b64decode(event['delta']))} bytes>"}
        self.double.sent.append(recorded)
        async with self.send_lock:
            await self.ws.send_str(json.dumps(event))
        self.double.notify()

    async def error(
        self,
        message: str,
        *,
        code: str | None,
        event_id: str | None,
        type_: str = "invalid_request_error",
    ) -> None:
        error = {
            "type": type_,
            "code": code,
            "message": message,
            "param": None,
            "event_id": event_id,
        }
        await self.send({"type": "error", "error": error})

    # -- conversation ------------------------------------------------------------------------

    def insert(self, item: dict[str, Any], previous_item_id: str | None) -> str | None:
        """Insert ``item``; return the id it follows (None at the start)."""
        if previous_item_id == "root":
            self.items.insert(0, item)
            return None
        if previous_item_id is not None:
            for index, existing in enumerate(self.items):
                if existing["id"] == previous_item_id:
                    self.items.insert(index + 1, item)
                    return previous_item_id
        tail = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        return tail

    def find(self, item_id: str) -> dict[str, Any] | None:
        return next((i for i in self.items if i["id"] == item_id), None)

    def last_user_text(self) -> str | None:
        for item in reversed(self.items):
            if item.get("type") == "message" and item.get("role") == "user":
                texts = [
                    c.get("text") or c.get("transcript") or ""
                    for c in item.get("content", [])
                    if c.get("type") in ("input_text", "input_audio")
                ]
                if text := " ".join(t for t in texts if t).strip():
                    return text
        return None

    # -- handlers ----------------------------------------------------------------------------

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        event_id = event.get("event_id")
        if kind == "session.update":
            _merge(self.session, event.get("session") or {})
            await self.send({"type": "session.updated", "session": self.session})
        elif kind == "conversation.item.create":
            item = copy.deepcopy(event.get("item") or {})
            item.setdefault("id", _id("item"))
            item.setdefault("object", "realtime.item")
            item.setdefault("status", "completed")
            if self.find(item["id"]) is not None:
                await self.error(
                    f"Item with id '{item['id']}' already exists.",
                    code="item_create_duplicate_item_id",
                    event_id=event_id,
                )
                return
            previous = self.insert(item, event.get("previous_item_id"))
            await self.send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
            await self.send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
            )
        elif kind == "conversation.item.delete":
            item_id = event.get("item_id", "")
            if (item := self.find(item_id)) is None:
                await self.error(
                    f"Item with id '{item_id}' not found.", code="item_not_found", event_id=event_id
                )
                return
            self.items.remove(item)
            await self.send({"type": "conversation.item.deleted", "item_id": item_id})
        elif kind == "conversation.item.truncate":
            item_id = event.get("item_id", "")
            if self.find(item_id) is None:
                await self.error(
                    f"Item with id '{item_id}' not found.", code="item_not_found", event_id=event_id
                )
                return
            await self.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": item_id,
                    "content_index": event.get("content_index", 0),
                    "audio_end_ms": event.get("audio_end_ms", 0),
                }
            )
        elif kind == "input_audio_buffer.append":
            self.input_audio += base64.b64decode(event.get("audio", ""))
        elif kind == "input_audio_buffer.commit":
            item_id = _id("item")
            await self.send(
                {
                    "type": "input_audio_buffer.committed",
                    "item_id": item_id,
                    "previous_item_id": None,
                }
            )
            self.input_audio.clear()
        elif kind == "input_audio_buffer.clear":
            self.input_audio.clear()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "response.create":
            await self.create_response(event)
        elif kind == "response.cancel":
            await self.cancel_response(event)
        else:
            await self.error(
                f"Unsupported event type '{kind}' (this double speaks the GA event names).",
                code="unknown_event",
                event_id=event_id,
            )

    async def create_response(self, event: dict[str, Any]) -> None:
        params = event.get("response") or {}
        if self.active is not None:
            await self.error(
                "Conversation already has an active response in progress: "
                f"{self.active[0].id}. Wait until the response is finished before creating "
                "a new one.",
                code="conversation_already_has_active_response",
                event_id=event.get("event_id"),
            )
            return
        metadata = params.get("metadata")
        record = ResponseRecord(
            id=_id("resp"),
            client_event_id=(metadata or {}).get("client_event_id"),
        )
        self.double.responses.append(record)
        task = asyncio.create_task(self.stream_response(record, params))
        self.active = (record, task)
        # Let the task take its first step: a task cancelled before it ever ran never enters
        # its `try`, so it would neither answer `response.done` nor clear `active` (a
        # `response.cancel` right behind the `response.create` left the double "busy" for good).
        await asyncio.sleep(0)

    async def cancel_response(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.active is None or (wanted and wanted != self.active[0].id):
            await self.error(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
                event_id=event.get("event_id"),
            )
            return
        record, task = self.active
        record.status = "cancelled"
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self.active is not None and self.active[0] is record:
            self.active = None

    # -- the response ------------------------------------------------------------------------

    def response_object(
        self, record: ResponseRecord, params: dict[str, Any], status: str
    ) -> dict[str, Any]:
        voice = self.session.get("audio", {}).get("output", {}).get("voice")
        return {
            "id": record.id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id,
            "output_modalities": ["audio"],
            "audio": {
                "output": {"format": {"type": "audio/pcm", "rate": SAMPLE_RATE}, "voice": voice}
            },
            "max_output_tokens": params.get("max_output_tokens", "inf"),
            "metadata": params.get("metadata"),
            "usage": None,
        }

    def reply_text(self, params: dict[str, Any]) -> str:
        reply = self.double.config.reply
        if isinstance(reply, str):
            return reply
        instructions = params.get("instructions") or self.session.get("instructions") or None
        ctx = ReplyContext(
            user_text=self.last_user_text(),
            instructions=instructions,
            items=copy.deepcopy(self.items),
        )
        return reply(ctx)

    async def stream_response(self, record: ResponseRecord, params: dict[str, Any]) -> None:
        config = self.double.config
        item_id = _id("item")
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"response_id": record.id, "item_id": item_id, "output_index": 0}
        part = {**where, "content_index": 0}
        try:
            await self.send(
                {
                    "type": "response.created",
                    "response": self.response_object(record, params, "in_progress"),
                }
            )
            record.text = self.reply_text(params)
            pcm = await speech(record.text, sample_rate=SAMPLE_RATE, voice=config.voice)
            await self.send({"type": "response.output_item.added", **where, "item": item})
            previous = self.insert(item, None)
            await self.send(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
            )
            await self.send(
                {
                    "type": "response.content_part.added",
                    **part,
                    "part": {"type": "audio", "transcript": ""},
                }
            )
            if config.first_audio_delay > 0:
                await asyncio.sleep(config.first_audio_delay)

            audio = pcm.tobytes()
            step = SAMPLE_RATE * config.chunk_ms // 1000 * 2
            chunks = [audio[i : i + step] for i in range(0, len(audio), step)] or [b""]
            words = record.text.split(" ")
            started = time.monotonic()
            words_sent = 0
            for index, chunk in enumerate(chunks):
                # each word goes out just before the audio that speaks it
                due = math.ceil(len(words) * (index + 1) / len(chunks))
                while words_sent < due:
                    delta = words[words_sent] if words_sent == 0 else " " + words[words_sent]
                    record.transcript_times.append((time.time(), delta))
                    await self.send(
                        {"type": "response.output_audio_transcript.delta", **part, "delta": delta}
                    )
                    record.transcript_sent += delta
                    words_sent += 1
                if record.first_audio_at is None:
                    record.first_audio_at = time.monotonic()
                record.audio_bytes_sent += len(chunk)
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        **part,
                        "delta": base64.b64encode(chunk).decode(),
                    }
                )
                if self.drop_after_chunks is not None and index + 1 >= self.drop_after_chunks:
                    record.status = "dropped"
                    self.drop()
                    return
                if config.pace > 0:
                    played = (index + 1) * config.chunk_ms / 1000 / config.pace
                    await asyncio.sleep(max(0.0, started + played - time.monotonic()))

            transcript = record.transcript_sent
            await self.send({"type": "response.output_audio.done", **part})
            await self.send(
                {"type": "response.output_audio_transcript.done", **part, "transcript": transcript}
            )
            await self.send(
                {
                    "type": "response.content_part.done",
                    **part,
                    "part": {"type": "audio", "transcript": transcript},
                }
            )
            await self.finish(record, params, item, status="completed")
        except asyncio.CancelledError:
            if record.status == "cancelled":
                await self.finish(record, params, item, status="cancelled")
            raise
        except ConnectionError:  # the client went away mid-reply
            record.status = "dropped"
        except Exception as e:  # e.g. a reply function that raised: make it loud
            log.exception("the realtime double failed to answer %s", record.id)
            record.status = "failed"
            self.double.protocol_errors.append(f"double failed on {record.id}: {e!r}")
            with contextlib.suppress(ConnectionError):
                await self.error(
                    f"The double failed: {e!r}", code=None, event_id=None, type_="server_error"
                )
        finally:
            if self.active is not None and self.active[0] is record:
                self.active = None

    async def finish(
        self, record: ResponseRecord, params: dict[str, Any], item: dict[str, Any], status: str
    ) -> None:
        item["status"] = "completed" if status == "completed" else "incomplete"
        item["content"] = [{"type": "output_audio", "transcript": record.transcript_sent}]
        where = {"response_id": record.id, "output_index": 0}
        await self.send({"type": "response.output_item.done", **where, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": item})
        record.usage = self.usage(record)
        response = self.response_object(record, params, status)
        response["output"] = [item]
        response["usage"] = record.usage
        if status == "cancelled":
            response["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
        record.status = status
        record.done_at = time.monotonic()
        await self.send({"type": "response.done", "response": response})

    def usage(self, record: ResponseRecord) -> dict[str, Any]:
        rate = self.double.config.audio_tokens_per_second
        input_text = " ".join(
            c.get("text") or c.get("transcript") or ""
            for item in self.items
            for c in item.get("content", [])
        )
        input_text += " " + (self.session.get("instructions") or "")
        input_text_tokens = len(input_text.split())
        input_audio_tokens = 0
        output_text_tokens = len(record.transcript_sent.split())
        output_audio_tokens = round(record.audio_seconds_sent * rate)
        input_tokens = input_text_tokens + input_audio_tokens
        output_tokens = output_text_tokens + output_audio_tokens
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {
                "text_tokens": input_text_tokens,
                "audio_tokens": input_audio_tokens,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {
                "text_tokens": output_text_tokens,
                "audio_tokens": output_audio_tokens,
            },
        }

    def drop(self) -> None:
        """Drop the TCP connection without a close frame, as a network failure would."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        if self.active is not None:
            self.active[1].cancel()
        await self.ws.close()


class OpenAIRealtimeDouble(DoubleServer):
    """The OpenAI Realtime API (WebSocket, GA events) on 127.0.0.1; see the module docstring."""

    name: ClassVar[str] = "openai-realtime-double"
    supported_faults = frozenset(
        {
            Fault.HTTP_500,
            Fault.HTTP_401,
            Fault.HANG,
            Fault.SILENT,
            Fault.AUTH_ERROR_EVENT,
            Fault.CLOSE_MID_STREAM,
        }
    )

    def __init__(self, *, config: RealtimeConfig | None = None, **base: Any) -> None:
        """``base``: ``port``, ``fault``, ``api_key`` (see ``DoubleServer``)."""
        super().__init__(**base)
        self.config = config or RealtimeConfig()
        self.events: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.responses: list[ResponseRecord] = []
        self.protocol_errors: list[str] = []
        self._connections: set[_Connection] = set()

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` (``http://127.0.0.1:P/v1``)."""
        return f"{self.url}/v1"

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/realtime", self._realtime)]

    async def on_stop(self) -> None:
        for conn in list(self._connections):
            await conn.close()

    # -- waiting and reading -----------------------------------------------------------------

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """Client events of one type, in order."""
        return [e for e in self.events if e.get("type") == kind]

    async def wait_for_event(
        self, kind: str, *, count: int = 1, within: float = 10.0
    ) -> dict[str, Any]:
        """The ``count``-th client event of ``kind`` (waiting for it, bounded)."""

        def check() -> dict[str, Any] | None:
            found = self.events_of(kind)
            return found[count - 1] if len(found) >= count else None

        return await self.wait_until(check, within)

    async def wait_for_response(
        self, status: str | None = None, within: float = 10.0
    ) -> ResponseRecord:
        """The latest response once it is done (or has ``status``)."""

        def check() -> ResponseRecord | None:
            if not self.responses:
                return None
            last = self.responses[-1]
            done = last.status != "in_progress" if status is None else last.status == status
            return last if done else None

        return await self.wait_until(check, within)

    @property
    def connections(self) -> int:
        """WebSocket connections open right now."""
        return len(self._connections)

    # -- protocol checks ---------------------------------------------------------------------

    def _check_client_event(self, event: Any) -> None:
        try:
            _CLIENT_EVENTS.validate_python(event)
        except ValidationError as e:
            kind = event.get("type") if isinstance(event, dict) else type(event).__name__
            self.protocol_errors.append(f"client event {kind!r} is not valid GA: {e}")

    def _check_server_event(self, event: dict[str, Any]) -> None:
        try:
            _SERVER_EVENTS.validate_python(event)
        except ValidationError as e:
            message = f"double sent an invalid {event['type']!r}: {e}"
            log.error(message)
            self.protocol_errors.append(message)

    # -- the endpoint ------------------------------------------------------------------------

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        model = request.query.get("model")
        if (refused := await openai_refusal(self, entry, self.api_key)) is not None:
            return refused
        if not model:
            return error_response(
                400,
                "Missing required parameter: 'model'.",
                type_="invalid_request_error",
                code=None,
            )

        ws = web.WebSocketResponse(max_msg_size=32 * 1024 * 1024, autoping=True)
        await ws.prepare(request)
        conn = _Connection(self, request, ws, model)
        self._connections.add(conn)
        self.notify()
        try:
            if entry.fault is Fault.AUTH_ERROR_EVENT:
                await conn.error(
                    "Incorrect API key provided.", code="invalid_api_key", event_id=None
                )
                await ws.close()
                return ws
            if entry.fault is Fault.CLOSE_MID_STREAM:
                conn.drop_after_chunks = self.config.close_after_chunks
            if entry.fault is not Fault.SILENT:
                await conn.send({"type": "session.created", "session": conn.session})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    event = json.loads(msg.data)
                except json.JSONDecodeError:
                    await conn.error(
                        "Invalid JSON in client event.", code="invalid_json", event_id=None
                    )
                    continue
                self.events.append(event)
                self._check_client_event(event)
                self.notify()
                if entry.fault is Fault.SILENT:
                    continue  # heard, never answered
                await conn.handle(event)
                self.notify()
        finally:
            if conn.active is not None:
                record, task = conn.active
                if record.status == "in_progress":
                    record.status = "dropped"
                task.cancel()
            self._connections.discard(conn)
            self.notify()
        return ws


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


if __name__ == "__main__":
    serve_forever(lambda port: OpenAIRealtimeDouble(port=port))
