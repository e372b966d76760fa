"""The chat-completions + speech double against ``livekit-plugins-openai`` and ``openai``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import openai
import pytest
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, APITimeoutError
from livekit.agents import llm as lk_llm
from livekit.plugins import openai as lk_openai

from livestage.prompt_data import data_block
from tests.doubles.audio import rms, speech
from tests.doubles.base import Fault
from tests.doubles.openai_chat import SAMPLE_RATE, OpenAIChatDouble

FAST = APIConnectOptions(max_retry=1, retry_interval=0.1, timeout=1.0)


def user_says(text: str) -> lk_llm.ChatContext:
    ctx = lk_llm.ChatContext()
    ctx.add_message(role="system", content="You host a live stream.")
    ctx.add_message(role="user", content=text)
    return ctx


async def stream_words(
    model: lk_openai.LLM, ctx: lk_llm.ChatContext, conn: APIConnectOptions = FAST
) -> tuple[list[str], lk_llm.CompletionUsage | None]:
    words: list[str] = []
    usage = None
    async with model.chat(chat_ctx=ctx, conn_options=conn) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                words.append(chunk.delta.content)
            if chunk.usage:
                usage = chunk.usage
    return words, usage


async def test_livekit_llm_streams_the_doubles_words(chat: OpenAIChatDouble) -> None:
    model = lk_openai.LLM(model="house-model", base_url=chat.base_url, api_key="test")
    try:
        words, usage = await stream_words(model, user_says("What is on screen?"))
    finally:
        await model.aclose()

    assert "".join(words) == chat.completions[-1]
    assert len(words) == len(chat.completions[-1].split()) > 3  # one chunk per word
    assert "What is on screen?" in chat.completions[-1]
    request = chat.requests_to("/v1/chat/completions")[-1]
    assert request.bearer == "test"
    body = request.json
    assert body["model"] == "house-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert usage is not None and usage.completion_tokens == len(words)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_openai_client_streaming_and_not(chat: OpenAIChatDouble) -> None:
    chat.config.reply = "Two plus two is four."
    client = openai.AsyncOpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="house-model",
            messages=[{"role": "user", "content": "What is two plus two?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        whole = await client.chat.completions.create(
            model="house-model", messages=[{"role": "user", "content": "And again?"}]
        )
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="house-model", messages=[])
        models = await client.models.list()
    finally:
        await client.close()

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Two plus two is four."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert whole.choices[0].message.content == "Two plus two is four."
    assert whole.usage is not None and whole.usage.completion_tokens == 5
    assert bad.value.body is not None and "messages" in str(bad.value.body)
    assert "house-model" in [m.id for m in models.data]


@pytest.mark.parametrize(
    ("model", "response_format", "stream_format"),
    [
        ("gpt-4o-mini-tts", None, "sse"),  # the plugin's defaults: mp3 inside SSE events
        ("gpt-4o-mini-tts", "pcm", "sse"),
        ("tts-1", "wav", "audio"),  # tts-1 gets raw bytes (SSE is not offered for it)
    ],
)
async def test_livekit_tts_synthesizes_through_audio_speech(
    chat: OpenAIChatDouble, model: str, response_format: str | None, stream_format: str
) -> None:
    text = "Hello everyone, welcome to the stream."
    kwargs: dict[str, Any] = {"response_format": response_format} if response_format else {}
    tts = lk_openai.TTS(model=model, voice="ash", base_url=chat.base_url, api_key="test", **kwargs)
    try:
        async with tts.synthesize(text) as stream:
            frames = [event.frame async for event in stream]
    finally:
        await tts.aclose()

    body = chat.requests_to("/v1/audio/speech")[-1].json
    assert body["input"] == text and body["model"] == model and body["voice"] == "ash"
    assert body.get("response_format", "mp3") == (response_format or "mp3")
    assert body.get("stream_format") == stream_format
    assert {f.sample_rate for f in frames} == {SAMPLE_RATE}
    got = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
    expected = await speech(text, sample_rate=SAMPLE_RATE)
    # lossy codecs pad a little; the length and loudness of the speech must survive
    assert abs(got.size - expected.size) < 0.1 * SAMPLE_RATE
    assert rms(got) == pytest.approx(rms(expected), rel=0.15)


@pytest.mark.parametrize(
    ("fault", "llm_error", "llm_requests", "tts_error"),
    [
        (Fault.HTTP_500, APIConnectionError, 2, APIStatusError),  # retried once, then given up
        (Fault.HTTP_401, APIStatusError, 1, APIStatusError),  # not retried
        (Fault.CLOSE_MID_STREAM, APIConnectionError, 1, APIConnectionError),
    ],
)
async def test_faults_raise_what_the_plugins_raise(
    chat: OpenAIChatDouble,
    fault: Fault,
    llm_error: type[Exception],
    llm_requests: int,
    tts_error: type[Exception],
) -> None:
    chat.fail(fault)
    model = lk_openai.LLM(model="house-model", base_url=chat.base_url, api_key="test")
    tts = lk_openai.TTS(base_url=chat.base_url, api_key="test")
    try:
        with pytest.raises(llm_error) as raised:
            await stream_words(model, user_says("hello"))
        assert len(chat.requests_to("/v1/chat/completions")) == llm_requests
        with pytest.raises(tts_error):
            async with tts.synthesize("hello", conn_options=APIConnectOptions(max_retry=0)) as s:
                async for _ in s:
                    pass
    finally:
        await model.aclose()
        await tts.aclose()
    if fault is Fault.HTTP_500:
        assert isinstance(raised.value.__cause__, APIStatusError)
        assert raised.value.__cause__.status_code == 500
    if fault is Fault.HTTP_401:
        assert isinstance(raised.value, APIStatusError) and raised.value.status_code == 401
        assert not raised.value.retryable


async def test_hanging_llm_times_out_after_conn_options_timeout(chat: OpenAIChatDouble) -> None:
    chat.fail(Fault.HANG)
    model = lk_openai.LLM(model="house-model", base_url=chat.base_url, api_key="test")
    started = time.monotonic()
    try:
        with pytest.raises(APIConnectionError) as raised:
            await stream_words(
                model, user_says("hello"), APIConnectOptions(max_retry=0, timeout=0.5)
            )
    finally:
        await model.aclose()
    assert isinstance(raised.value, APITimeoutError)
    assert time.monotonic() - started < 3


async def test_hanging_tts_ignores_the_conn_timeout(chat: OpenAIChatDouble) -> None:
    """The TTS plugin's read timeout is a fixed 30 s: a caller must bound it itself."""
    chat.fail(Fault.HANG)
    tts = lk_openai.TTS(base_url=chat.base_url, api_key="test")
    try:
        stream = tts.synthesize("hello", conn_options=APIConnectOptions(max_retry=0, timeout=0.5))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2), stream:
                async for _ in stream:
                    pass
    finally:
        await tts.aclose()
    assert len(chat.requests_to("/v1/audio/speech")) == 1


async def test_bad_chat_bodies_get_a_400_naming_the_field(chat: OpenAIChatDouble) -> None:
    client = openai.AsyncOpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError) as no_model:
            await client.chat.completions.create(
                model="", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.BadRequestError) as bad_role:
            await client.chat.completions.create(
                model="m",
                messages=[{"role": "narrator", "content": "hi"}],  # type: ignore[list-item,misc]
            )
        with pytest.raises(openai.BadRequestError) as bad_format:
            await client.audio.speech.create(
                model="tts-1",
                voice="ash",
                input="hi",
                response_format="ogg",  # type: ignore[arg-type]
            )
    finally:
        await client.close()
    assert _param(no_model.value) == "model"
    assert _param(bad_role.value) == "messages[0].role"
    assert _param(bad_format.value) == "response_format"


def _param(error: openai.BadRequestError) -> Any:
    body = error.body
    return body.get("param") if isinstance(body, dict) else None


async def test_key_check_and_delay_before_the_first_token() -> None:
    async with OpenAIChatDouble(api_key="right-key") as chat:
        chat.config.first_token_delay = 0.3
        wrong = openai.AsyncOpenAI(base_url=chat.base_url, api_key="wrong-key", max_retries=0)
        right = openai.AsyncOpenAI(base_url=chat.base_url, api_key="right-key", max_retries=0)
        try:
            with pytest.raises(openai.AuthenticationError):
                await wrong.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}]
                )
            started = time.monotonic()
            stream = await right.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            headers_after = time.monotonic() - started
            first = await anext(aiter(stream))
            first_token_after = time.monotonic() - started
            await stream.close()
        finally:
            await wrong.close()
            await right.close()
    assert first.choices[0].delta.content == "Thanks"
    assert headers_after < 0.3 <= first_token_after


async def test_structured_outputs_check_a_strict_schema_and_answer_from_quoted_text(
    chat: OpenAIChatDouble,
) -> None:
    client = openai.AsyncOpenAI(base_url=chat.base_url, api_key="test", max_retries=0)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "facts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"ref": {"type": "string"}, "fact": {"type": "string"}},
                    "required": ["ref", "fact"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["facts"],
        "additionalProperties": False,
    }
    quoted = data_block({"messages": [{"ref": "a", "text": "I'm from Lisbon, I play chess"}]})

    async def ask(schema: dict[str, Any]) -> str | None:
        completion = await client.chat.completions.create(
            model="house-model",
            messages=[{"role": "user", "content": f"Facts:\n{quoted}"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "facts", "strict": True, "schema": schema},
            },
        )
        return completion.choices[0].message.content

    try:
        answer = await ask(schema)
        assert answer is not None
        assert json.loads(answer) == {
            "facts": [{"ref": "a", "fact": "is from Lisbon"}, {"ref": "a", "fact": "plays chess"}]
        }
        loose = {**schema, "additionalProperties": True}
        with pytest.raises(openai.BadRequestError) as refused:
            await ask(loose)
        assert refused.value.param == "response_format"
        assert "additionalProperties" in refused.value.message
        chat.config.structured_reply = "not json"  # a test's broken answer is sent as is
        assert await ask(schema) == "not json"
    finally:
        await client.close()
