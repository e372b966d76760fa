"""The Realtime double against the real ``livekit-plugins-openai`` ``RealtimeModel``.

Room-less sessions (``AgentSession`` with no room: text in, the model's reply out) prove the
protocol: what the plugin sends, that the reply, usage and metrics come back, cancellation and
each fault. ``test_viewer_hears_reply_and_skip_cancels`` runs the same model in a real room and
listens as a viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, APIConnectOptions
from livekit.agents.llm import ChatMessage
from livekit.agents.metrics import RealtimeModelMetrics
from livekit.agents.voice import room_io
from livekit.plugins.openai.realtime import RealtimeModel

from tests.doubles.audio import speech
from tests.doubles.base import Fault
from tests.doubles.openai_realtime import SAMPLE_RATE, OpenAIRealtimeDouble, ReplyContext
from tests.support.room import fake_job, watching

# fail fast: one retry, a short handshake timeout (the defaults are 3 retries, 2 s apart, 10 s)
FAST = APIConnectOptions(max_retry=1, retry_interval=0.1, timeout=1.0)


def realtime_model(double: OpenAIRealtimeDouble, **kwargs: Any) -> RealtimeModel:
    return RealtimeModel(
        model="gpt-realtime-2", voice="cedar", base_url=double.base_url, api_key="test", **kwargs
    )


def collect_response_metrics(session: AgentSession[Any], into: list[RealtimeModelMetrics]) -> None:
    """Per-response metrics (the plugin also reports its connection time, without a request id).

    ``metrics_collected`` is deprecated in 1.8.9 for usage (``session_usage_updated``), but it is
    still where ``ttft`` and ``cancelled`` of each response surface.
    """

    def on_metrics(ev: Any) -> None:
        if isinstance(ev.metrics, RealtimeModelMetrics) and ev.metrics.request_id:
            into.append(ev.metrics)

    session.on("metrics_collected", on_metrics)


@contextlib.asynccontextmanager
async def roomless(model: RealtimeModel) -> AsyncIterator[AgentSession[Any]]:
    try:
        session: AgentSession[Any]
        async with AgentSession(llm=model) as session:
            await session.start(Agent(instructions="You host a live stream."))
            yield session
    finally:
        await model.aclose()


async def test_reply_transcript_usage_and_metrics(realtime: OpenAIRealtimeDouble) -> None:
    realtime.config.pace = 0  # no need to wait in real time here
    metrics: list[RealtimeModelMetrics] = []
    async with roomless(realtime_model(realtime)) as session:
        collect_response_metrics(session, metrics)
        result: Any = await session.run(user_input="What is on screen right now?")
        usage = session.usage

    record = realtime.responses[-1]
    assert record.status == "completed"
    assert "What is on screen right now?" in record.text  # the default reply quotes the user
    message = result.expect.next_event().is_message(role="assistant").event().item
    assert message.text_content == record.text

    # the handshake and the GA session the plugin configures
    handshake = realtime.requests[0]
    assert (handshake.path, handshake.query["model"], handshake.bearer) == (
        "/v1/realtime",
        "gpt-realtime-2",
        "test",
    )
    first_update = realtime.events_of("session.update")[0]["session"]
    assert first_update["type"] == "realtime"
    assert first_update["output_modalities"] == ["audio"]
    assert first_update["audio"]["output"]["voice"] == "cedar"
    assert first_update["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": SAMPLE_RATE}

    # the user item was acknowledged under its own id, the response matched by client_event_id
    user_item = realtime.events_of("conversation.item.create")[-1]["item"]
    added = [e["item"]["id"] for e in realtime.sent if e["type"] == "conversation.item.added"]
    assert user_item["id"] in added
    client_event_id = realtime.events_of("response.create")[-1]["response"]["metadata"][
        "client_event_id"
    ]
    created = next(e for e in realtime.sent if e["type"] == "response.created")
    assert created["response"]["metadata"]["client_event_id"] == client_event_id

    # all of the speech went out, in order, ending with response.done carrying usage
    full = await speech(record.text, sample_rate=SAMPLE_RATE)
    assert record.audio_bytes_sent == full.size * 2
    kinds = [e["type"] for e in realtime.sent if e["type"].startswith("response.")]
    assert kinds[:4] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
    ]
    assert kinds[-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]

    # usage from response.done reaches the session's usage and its metrics
    assert record.usage is not None
    (llm_usage,) = [u for u in usage.model_usage if u.type == "llm_usage"]
    assert llm_usage.model == "gpt-realtime-2"
    assert llm_usage.input_tokens == record.usage["input_tokens"] > 0
    assert llm_usage.output_audio_tokens == record.usage["output_token_details"]["audio_tokens"] > 0
    assert llm_usage.output_text_tokens == record.usage["output_token_details"]["text_tokens"] > 0
    (metric,) = metrics
    assert metric.request_id == record.id
    assert metric.output_tokens == record.usage["output_tokens"]
    assert not metric.cancelled


async def test_configured_reply_and_delay_before_first_audio(
    realtime: OpenAIRealtimeDouble,
) -> None:
    seen: list[ReplyContext] = []

    def reply(ctx: ReplyContext) -> str:
        seen.append(ctx)
        return "Here is the weather for the stage."

    realtime.config.reply = reply
    realtime.config.first_audio_delay = 0.3
    realtime.config.pace = 0
    metrics: list[RealtimeModelMetrics] = []
    async with roomless(realtime_model(realtime)) as session:
        collect_response_metrics(session, metrics)
        handle = session.generate_reply(instructions="Talk about the weather.")
        await handle
        items = handle.chat_items

    record = realtime.responses[-1]
    assert record.text == "Here is the weather for the stage."
    assert isinstance(items[-1], ChatMessage) and items[-1].text_content == record.text
    assert seen and seen[-1].instructions is not None
    assert "Talk about the weather." in seen[-1].instructions
    assert record.first_audio_at is not None
    assert record.first_audio_at - record.created_at >= 0.3
    assert metrics[-1].ttft >= 0.3  # the plugin's own time to first audio sees the delay


async def test_interrupt_sends_response_cancel_and_the_double_stops(
    realtime: OpenAIRealtimeDouble,
) -> None:
    realtime.config.reply = "Once upon a time there was a ship that sailed the seven seas. " * 3
    metrics: list[RealtimeModelMetrics] = []
    async with roomless(realtime_model(realtime)) as session:
        collect_response_metrics(session, metrics)
        handle = session.generate_reply(instructions="Tell a story.")
        await realtime.wait_until(
            lambda: realtime.responses and realtime.responses[-1].first_audio_at
        )
        session.interrupt()
        await realtime.wait_for_event("response.cancel")
        record = await realtime.wait_for_response()
        async with asyncio.timeout(5):
            await handle

    assert record.status == "cancelled"
    assert handle.interrupted
    full_seconds = (await speech(record.text, sample_rate=SAMPLE_RATE)).size / SAMPLE_RATE
    assert record.audio_seconds_sent < full_seconds / 2
    done = [e for e in realtime.sent if e["type"] == "response.done"][-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    # nothing streamed after the cancel was handled
    last_audio = max(
        i for i, e in enumerate(realtime.sent) if e["type"] == "response.output_audio.delta"
    )
    assert last_audio < len(realtime.sent) - 1
    assert metrics[-1].cancelled


@pytest.mark.parametrize(
    ("fault", "handshakes", "error_type"),
    [
        (Fault.HTTP_500, 2, "APIConnectionError"),
        (Fault.HTTP_401, 2, "APIConnectionError"),  # the plugin retries a 401 like a 500
        (Fault.HANG, 2, "APIConnectionError"),  # each handshake times out (conn_options.timeout)
        (Fault.AUTH_ERROR_EVENT, 1, "APIError"),  # invalid_api_key event: fatal, no retry
    ],
)
async def test_faults_end_the_session_with_an_unrecoverable_error(
    realtime: OpenAIRealtimeDouble, fault: Fault, handshakes: int, error_type: str
) -> None:
    realtime.fail(fault)
    errors: list[Any] = []
    fatal_seen = asyncio.Event()

    def on_error(ev: Any) -> None:
        errors.append(ev.error)
        if not ev.error.recoverable:
            fatal_seen.set()

    model = realtime_model(realtime, conn_options=FAST)
    started = time.monotonic()
    with contextlib.suppress(Exception):  # AgentSession.aclose re-raises the model's error
        async with roomless(model) as session:
            session.on("error", on_error)
            with contextlib.suppress(Exception):
                session.generate_reply(instructions="Say hello.")
            async with asyncio.timeout(10):
                await fatal_seen.wait()
    fatal = [e for e in errors if not e.recoverable]
    assert type(fatal[0].error).__name__ == error_type, fatal
    assert len(realtime.requests) == handshakes
    assert not realtime.responses  # nothing was ever spoken
    assert time.monotonic() - started < 8


async def test_silent_service_ends_the_reply_empty_after_ten_seconds(
    realtime: OpenAIRealtimeDouble,
) -> None:
    """No ``response.created``: the plugin gives up after its fixed 10 s, with no error event.

    The speech handle then completes quietly (not interrupted, nothing said): a host that wants
    to fall back sooner needs its own deadline on the first audio.
    """
    realtime.fail(Fault.SILENT)
    errors: list[Any] = []
    async with roomless(realtime_model(realtime, conn_options=FAST)) as session:
        session.on("error", lambda ev: errors.append(ev.error))
        started = time.monotonic()
        handle = session.generate_reply(instructions="Say hello.")
        async with asyncio.timeout(15):
            await handle
        waited = time.monotonic() - started
    assert 9.5 <= waited < 12
    assert handle.chat_items == [] and not handle.interrupted
    assert errors == []
    assert realtime.events_of("response.create") and not realtime.sent  # heard, never answered


async def test_connection_dropped_mid_reply_reconnects_and_replays(
    realtime: OpenAIRealtimeDouble,
) -> None:
    realtime.fail(Fault.CLOSE_MID_STREAM, times=1)
    realtime.config.close_after_chunks = 3
    realtime.config.pace = 0
    errors: list[Any] = []
    async with roomless(realtime_model(realtime, conn_options=FAST)) as session:
        session.on("error", lambda ev: errors.append(ev.error))
        result: Any = await session.run(user_input="Hello there")
        await realtime.wait_until(lambda: len(realtime.requests) == 2 and realtime.connections == 1)
        user_items = realtime.events_of("conversation.item.create")
        again = session.generate_reply(instructions="Carry on.")  # the new connection works
        async with asyncio.timeout(10):
            await again

    assert realtime.responses[0].status == "dropped"
    assert realtime.responses[0].audio_seconds_sent == pytest.approx(0.3)
    assert [type(e.error).__name__ for e in errors] == ["APIConnectionError"]
    assert errors[0].recoverable
    # the speech ends with what arrived before the drop, not as interrupted
    message = result.expect.next_event().is_message(role="assistant").event().item
    assert not message.interrupted
    assert realtime.responses[0].text.startswith(message.text_content or "-")
    # the new connection got the session and the user's item again
    assert len(user_items) == 2 and user_items[0]["item"]["id"] == user_items[1]["item"]["id"]
    assert realtime.responses[-1].status == "completed" and again.chat_items


async def test_viewer_hears_reply_and_skip_cancels(
    realtime: OpenAIRealtimeDouble, livekit_server: Any
) -> None:
    room = f"rt-{uuid.uuid4().hex[:8]}"
    realtime.config.reply = "Welcome to the stream everyone. " * 4
    model = realtime_model(realtime)
    async with watching(livekit_server, room) as viewer, fake_job(livekit_server, room) as job:
        spoken: list[str] = []
        session: AgentSession[Any] = AgentSession(llm=model)

        def on_item(ev: Any) -> None:
            if ev.item.type == "message":
                spoken.append(ev.item.text_content or "")

        session.on("conversation_item_added", on_item)
        await session.start(
            Agent(instructions="You host a live stream."),
            room=job.room,
            room_options=room_io.RoomOptions(audio_input=False),
        )
        try:
            handle = session.generate_reply(instructions="Greet the viewers.")
            await viewer.wait_for_audio(job.identity, loud_seconds=1.0)
            await realtime.wait_until(lambda: realtime.responses[-1].audio_seconds_sent > 1.5)
            session.interrupt()  # what the host's `skip` does
            await realtime.wait_for_event("response.cancel")
            record = await realtime.wait_for_response("cancelled")
            async with asyncio.timeout(5):
                await handle
            truncate = await realtime.wait_for_event("conversation.item.truncate")
            stopped_at = time.monotonic()
            await asyncio.sleep(1.0)  # what the viewer gets once the audio has stopped
            after_stop = viewer.loud_seconds(job.identity, since=stopped_at + 0.5)
        finally:
            await session.aclose()
            await model.aclose()

    assert handle.interrupted
    assert after_stop == 0.0
    assert 0 < truncate["audio_end_ms"] <= record.audio_seconds_sent * 1000
    assert spoken and record.text.startswith(spoken[-1])  # only what was heard is kept
