"""A local double of an OpenAI-compatible HTTP API: chat completions and text-to-speech.

Start it and point any OpenAI client at it::

    async with OpenAIChatDouble() as api:
        llm = livekit.plugins.openai.LLM(model="house-model", base_url=api.base_url,
                                         api_key="test")                 # http://127.0.0.1:P/v1
        tts = livekit.plugins.openai.TTS(base_url=api.base_url, api_key="test")
        client = openai.AsyncOpenAI(base_url=api.base_url, api_key="test")
        ...
        body = api.requests_to("/v1/chat/completions")[-1].json   # what the client sent

Routes:

- ``POST /v1/chat/completions``: ``stream: true`` answers Server-Sent Events, one
  ``chat.completion.chunk`` per word (the first carries ``role``), a last chunk with
  ``finish_reason: "stop"``, then — when ``stream_options.include_usage`` — a chunk with empty
  ``choices`` and ``usage``, then ``data: [DONE]``. Without ``stream`` a ``chat.completion``.
  The body is checked like the real API does (``model``, a non-empty ``messages`` list with
  valid roles) and a bad one gets a 400 naming the field.
- ``POST /v1/audio/speech``: speech of ``input`` (``espeak-ng``, 24 kHz mono) in
  ``response_format`` (``mp3`` by default, as the real API; also ``pcm``, ``wav``, ``flac``,
  ``opus``, ``aac``). With ``stream_format: "sse"`` (what ``livekit-plugins-openai`` asks for
  with every model but ``tts-1``/``tts-1-hd``) the audio of that format travels base64 in
  ``speech.audio.delta`` events and a ``speech.audio.done`` event carries ``usage``; otherwise
  the bytes come raw with the format's ``Content-Type``.
- ``GET /v1/models``: the configured model names.

The reply text is ``config.reply`` (a string, or a function of the request's ``messages``)
or by default derived from the last user message.

Structured outputs: a request with ``response_format: {"type": "json_schema", "json_schema":
{"name", "schema", "strict": true}}`` is checked as the real API checks a strict schema (every
object lists all its ``properties`` in ``required`` and has ``additionalProperties: false``; a
name of ``[A-Za-z0-9_-]{1,64}``): a bad one gets a 400 naming ``response_format``. The answer's
content is ``config.structured_reply`` when set (a string sent as is: a test's bad JSON or
wrong shape; or a function of the request body), else ``facts_answer``: the host's
fact-extraction shape ``{"facts": [{"ref", "fact"}]}`` derived from the quoted viewer text in
the user message's data blocks (each ``{"ref", "text"}`` item) by the offline rules of
``livestage.facts``, so the answer is deterministic and follows the quoted text only. The real
API guarantees a strict schema's answer conforms, so the double checks its own answer against
the request's schema (``jsonschema``) and answers 500 if it does not (set
``structured_reply`` for other shapes). ``config.first_token_delay`` and
``config.token_interval`` pace the stream (seconds).

What it records: ``api.requests`` (method, path, headers, body; ``.json`` parses it),
``api.completions`` (the reply text of each chat completion, in order).

Faults (``api.fail(Fault.X, times=None)``): ``HTTP_500``, ``HTTP_401`` (OpenAI error bodies),
``HANG`` (never answers, not even headers), ``CLOSE_MID_STREAM`` (a chat stream, or an SSE
speech stream, drops the connection after ``config.close_after_chunks`` chunks). A fault
applies to any route.

Standalone: ``python -m tests.doubles.openai_chat --port 8765``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import jsonschema
from aiohttp import web

from livestage.facts import extract_facts
from livestage.prompt_data import read_data_blocks
from tests.doubles.audio import CONTENT_TYPES, Voice, encode, speech
from tests.doubles.base import (
    DoubleServer,
    Fault,
    RecordedRequest,
    openai_refusal,
    serve_forever,
)

SAMPLE_RATE = 24000
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def default_reply(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            text = _text_of(message.get("content"))
            if text:
                return f"Thanks for the message. You said: {text}"
    return "Hello everyone, welcome to the stream."


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict)).strip()
    return ""


_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def strict_schema_problem(schema: Any, context: str = "()") -> str | None:
    """Why OpenAI would refuse `schema` in strict mode (the checks this double makes), or
    None: every object needs `additionalProperties: false` and all its properties required."""
    if not isinstance(schema, dict):
        return f"In context={context}, schema must be a JSON Schema object."
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={context}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        missing = sorted(set(properties) - set(schema.get("required", [])))
        if missing:
            return (
                f"In context={context}, 'required' is required to be supplied and to be an "
                f"array including every key in properties. Missing '{missing[0]}'."
            )
        for key, value in properties.items():
            if problem := strict_schema_problem(value, f"{context[:-1]}'properties', '{key}')"):
                return problem
    if "items" in schema:
        return strict_schema_problem(schema["items"], f"{context[:-1]}'items')")
    return None


def _quoted_items(value: Any) -> Iterator[dict[str, Any]]:
    """Every `{"ref": str, "text": str}` object anywhere in a decoded data block."""
    if isinstance(value, dict):
        if isinstance(value.get("ref"), str) and isinstance(value.get("text"), str):
            yield value
        for inner in value.values():
            yield from _quoted_items(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _quoted_items(inner)


def facts_answer(body: dict[str, Any]) -> str:
    """The fact-extraction answer to `body`: `{"facts": [{"ref", "fact"}]}` with the offline
    rules' facts of each quoted `{"ref", "text"}` in the user messages' data blocks."""
    facts = [
        {"ref": item["ref"], "fact": fact}
        for message in body["messages"]
        if message.get("role") == "user"
        for block in read_data_blocks(_text_of(message.get("content")))
        for item in _quoted_items(block)
        for fact in extract_facts(item["text"])
    ]
    return json.dumps({"facts": facts})


@dataclass
class ChatConfig:
    """How the double answers; change fields at any time."""

    reply: str | Callable[[list[dict[str, Any]]], str] = default_reply
    first_token_delay: float = 0.0
    token_interval: float = 0.0
    close_after_chunks: int = 2
    voice: Voice = "espeak"
    models: tuple[str, ...] = ("house-model", "gpt-4.1", "gpt-4o-mini-tts")
    speech_chunk_bytes: int = 4096
    """Bytes of encoded audio per ``speech.audio.delta`` event."""
    structured_reply: str | Callable[[dict[str, Any]], str] | None = None
    """The content answering a ``json_schema`` request (None: ``facts_answer``)."""


class OpenAIChatDouble(DoubleServer):
    """Chat completions + speech, OpenAI-compatible, on 127.0.0.1; see the module docstring."""

    name: ClassVar[str] = "openai-chat-double"
    supported_faults = frozenset(
        {Fault.HTTP_500, Fault.HTTP_401, Fault.HANG, Fault.CLOSE_MID_STREAM}
    )

    def __init__(self, *, config: ChatConfig | None = None, **base: Any) -> None:
        """``base``: ``port``, ``fault``, ``api_key`` (see ``DoubleServer``)."""
        super().__init__(**base)
        self.config = config or ChatConfig()
        self.completions: list[str] = []

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` (``http://127.0.0.1:P/v1``)."""
        return f"{self.url}/v1"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/audio/speech", self._speech),
            web.get("/v1/models", self._models),
        ]

    # -- shared ------------------------------------------------------------------------------

    @staticmethod
    def _bad_request(message: str, param: str) -> web.Response:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": None,
            }
        }
        return web.json_response(body, status=400)

    @staticmethod
    def _drop(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if (refused := await openai_refusal(self, entry, self.api_key)) is not None:
            return refused
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "double"}
            for m in self.config.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _admit(
        self, request: web.Request
    ) -> tuple[RecordedRequest, dict[str, Any]] | web.StreamResponse:
        """Record the request; the refusal it gets (fault, key, a body that is not a JSON
        object), or it and its body."""
        entry = await self.record(request)
        if (refused := await openai_refusal(self, entry, self.api_key)) is not None:
            return refused
        try:
            body = entry.json
        except ValueError:
            return self._bad_request("We could not parse the JSON body of your request.", "body")
        if not isinstance(body, dict):
            return self._bad_request("The body must be a JSON object.", "body")
        return entry, body

    # -- chat completions --------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        entry, body = admitted
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self._bad_request("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad_request("'messages' must be a non-empty array.", "messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                return self._bad_request(
                    f"Invalid value for 'messages[{index}].role': must be one of {sorted(ROLES)}.",
                    f"messages[{index}].role",
                )

        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            structured = self._structured(body, response_format.get("json_schema"))
            if isinstance(structured, web.Response):
                return structured
            text = structured
        else:
            reply = self.config.reply
            text = reply if isinstance(reply, str) else reply(messages)
        self.completions.append(text)
        self.notify()
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        created = int(time.time())
        model = body["model"]
        usage = {
            "prompt_tokens": sum(len(_text_of(m.get("content")).split()) for m in messages),
            "completion_tokens": len(text.split()),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

        if not body.get("stream"):
            if self.config.first_token_delay > 0:
                await asyncio.sleep(self.config.first_token_delay)
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                }
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if self.config.first_token_delay > 0:  # headers at once, the first token later
            await asyncio.sleep(self.config.first_token_delay)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }

        words = text.split(" ")
        chunks = [chunk({"role": "assistant", "content": words[0]}, None)]
        chunks += [chunk({"content": " " + word}, None) for word in words[1:]]
        chunks.append(chunk({}, "stop"))
        if include_usage:
            chunks.append({**chunk({}, None), "choices": [], "usage": usage})
        for index, data in enumerate(chunks):
            await response.write(f"data: {json.dumps(data)}\n\n".encode())
            if (
                entry.fault is Fault.CLOSE_MID_STREAM
                and index + 1 >= self.config.close_after_chunks
            ):
                self._drop(request)
                return response
            if self.config.token_interval > 0 and index + 1 < len(chunks):
                await asyncio.sleep(self.config.token_interval)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _structured(self, body: dict[str, Any], spec: Any) -> str | web.Response:
        """The content answering a structured-output request, or the API's refusal of it."""
        param = "response_format"
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return self._bad_request(
                "Missing required parameter: 'response_format.json_schema.name'.", param
            )
        if not _SCHEMA_NAME.fullmatch(spec["name"]):
            return self._bad_request(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param,
            )
        schema = spec.get("schema", {})
        if spec.get("strict") and (problem := strict_schema_problem(schema)):
            return self._bad_request(
                f"Invalid schema for response_format '{spec['name']}': {problem}", param
            )
        given = self.config.structured_reply
        if isinstance(given, str):
            return given
        text = given(body) if given is not None else facts_answer(body)
        try:
            jsonschema.validate(json.loads(text), schema)
        except (ValueError, jsonschema.ValidationError, jsonschema.SchemaError) as error:
            message = f"the double's answer does not fit the requested schema: {error}"
            return web.json_response(
                {
                    "error": {
                        "message": message,
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                status=500,
            )
        return text

    # -- speech ------------------------------------------------------------------------------

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        entry, body = admitted
        for required in ("model", "input", "voice"):
            if not isinstance(body.get(required), str) or not body[required]:
                return self._bad_request(f"Missing required parameter: '{required}'.", required)
        fmt = body.get("response_format", "mp3")
        if fmt not in CONTENT_TYPES:
            return self._bad_request(
                f"Invalid value: '{fmt}'. Supported values are: {sorted(CONTENT_TYPES)}.",
                "response_format",
            )
        stream_format = body.get("stream_format", "audio")
        if stream_format not in ("audio", "sse"):
            return self._bad_request(
                f"Invalid value: '{stream_format}'. Supported values are: 'sse' and 'audio'.",
                "stream_format",
            )
        if stream_format == "sse" and body["model"] in ("tts-1", "tts-1-hd"):
            return self._bad_request(
                f"stream_format 'sse' is not supported for model '{body['model']}'.",
                "stream_format",
            )

        pcm = await speech(body["input"], sample_rate=SAMPLE_RATE, voice=self.config.voice)
        audio = encode(pcm, SAMPLE_RATE, fmt)
        if self.config.first_token_delay > 0:
            await asyncio.sleep(self.config.first_token_delay)

        if stream_format == "audio":
            if entry.fault is Fault.CLOSE_MID_STREAM:
                response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[fmt]})
                await response.prepare(request)
                await response.write(audio[: len(audio) // 3])
                self._drop(request)
                return response
            return web.Response(body=audio, headers={"Content-Type": CONTENT_TYPES[fmt]})

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        step = self.config.speech_chunk_bytes
        pieces = [audio[i : i + step] for i in range(0, len(audio), step)]
        # a short text may fit in one or two events: drop before the last one all the same
        drop_after = min(self.config.close_after_chunks, max(1, len(pieces) - 1))
        for index, piece in enumerate(pieces):
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()}
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            if entry.fault is Fault.CLOSE_MID_STREAM and index + 1 >= drop_after:
                self._drop(request)
                return response
        input_tokens = len(body["input"].split())
        output_tokens = round(len(pcm) / SAMPLE_RATE * 10)
        done = {
            "type": "speech.audio.done",
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        await response.write_eof()
        return response


if __name__ == "__main__":
    serve_forever(lambda port: OpenAIChatDouble(port=port))
