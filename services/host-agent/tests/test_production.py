"""The production backends against their local doubles, in real rooms heard by rtc viewers.

The real plugins reach the doubles through their base-URL settings (`OPENAI_BASE_URL`-style
`OpenAISettings.base_url`, `ANAM_API_URL`, `HOST_PIPELINE_BASE_URL`); nothing is patched. Two
workers serve the module: `openai-realtime` + `anam`, and `pipeline` (chat completions + speech,
both on the chat double) + the local avatar. Connection timeouts are shortened by settings so
each fallback takes a second or two; the local avatar is drawn small to spare the CPU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from livekit import api
from pydantic import SecretStr
from redis.asyncio import Redis

from host_agent.settings import CostSettings, PipelineSettings
from host_agent.spend import spend_key
from livestage import attributes, metrics, subjects
from livestage.identity import ANAM_AVATAR_IDENTITY, LOCAL_AVATAR_IDENTITY
from livestage.settings import AnamSettings, OpenAISettings, RedisSettings
from livestage.shows import spend_day
from tests.doubles.anam import AnamDouble
from tests.doubles.base import Fault
from tests.doubles.openai_chat import OpenAIChatDouble
from tests.doubles.openai_realtime import OpenAIRealtimeDouble
from tests.support.livekit_helpers import server_api

from .conftest import (
    ANAM_KEY,
    FAST,
    OPENAI_KEY,
    REPLY,
    SMALL_AVATAR,
    HostWorker,
    Viewer,
    chat_message,
    command,
    go_live,
    metric_total,
    realtime_and_anam,
    realtime_reply,
    running_worker,
    say_then_skip,
    unique_room,
    until,
)

PIPELINE_REPLY = "Hello Ada, this answer comes from the chat model. It speaks in my voice."
CHAT_KEY = "test-chat-key"


@dataclass
class Production:
    realtime: OpenAIRealtimeDouble
    anam: AnamDouble
    chat: OpenAIChatDouble
    worker: HostWorker
    """voice openai-realtime, avatar anam"""
    pipeline: HostWorker
    """voice pipeline (chat + speech on the chat double), avatar local"""
    redis: Redis

    def heal(self) -> None:
        for double in (self.realtime, self.anam, self.chat):
            double.heal()
        self.realtime.config.reply = realtime_reply
        self.realtime.config.pace = 1.0
        self.chat.config.reply = PIPELINE_REPLY


@pytest.fixture(scope="module")
async def production(livekit_server, nats_server, redis_server) -> AsyncIterator[Production]:  # type: ignore[no-untyped-def]
    async with realtime_and_anam() as (realtime, anam), OpenAIChatDouble(api_key=CHAT_KEY) as chat:
        common = {
            "redis": RedisSettings(url=redis_server.url),
            "local_avatar": SMALL_AVATAR,
            "cost": CostSettings(check_interval_s=1.0),
        }
        realtime_services = common | {
            "openai": OpenAISettings(api_key=SecretStr(OPENAI_KEY), base_url=realtime.base_url),
            "anam": AnamSettings(
                api_key=SecretStr(ANAM_KEY), api_url=anam.url, avatar_id="cara-avatar-id"
            ),
        }
        pipeline_services = common | {
            "pipeline": PipelineSettings(
                base_url=chat.base_url,
                model="house-model",
                api_key=SecretStr(CHAT_KEY),
                speech_base_url=chat.base_url,
            )
        }
        async with (
            running_worker(
                livekit_server,
                nats_server,
                services=realtime_services,
                voice="openai-realtime",
                avatar="anam",
                **FAST,
            ) as worker,
            running_worker(
                livekit_server,
                nats_server,
                services=pipeline_services,
                voice="pipeline",
                avatar="local",
                **FAST,
            ) as pipeline,
        ):
            redis = Redis.from_url(redis_server.url)
            setup = Production(realtime, anam, chat, worker, pipeline, redis)
            setup.heal()
            yield setup
            await redis.aclose()


def host_attribute(viewer: Viewer, name: str) -> str:
    """One of the host's participant attributes as the viewer sees it ("" before it arrives)."""
    host = viewer.host()
    return host.attributes.get(name, "") if host is not None else ""


def video_from(viewer: Viewer, identity: str) -> bool:
    return any(sender == identity for _, sender, _ in viewer.video)


def usage_sums(sent: list[dict[str, Any]]) -> dict[str, int]:
    """What the `response.done` events among `sent` (the double's events) said was used."""
    sums = {"input_text": 0, "output_text": 0, "output_audio": 0}
    for event in sent:
        if event["type"] != "response.done":
            continue
        usage = event["response"]["usage"]
        sums["input_text"] += usage["input_token_details"]["text_tokens"]
        sums["output_text"] += usage["output_token_details"]["text_tokens"]
        sums["output_audio"] += usage["output_token_details"]["audio_tokens"]
    return sums


async def test_realtime_voice_and_anam_avatar_host_a_room(
    production: Production, bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    realtime, anam = production.realtime, production.anam
    sent_before = len(realtime.sent)
    room = unique_room()
    recorder, viewer = await go_live(production.worker, bus, viewers, room)
    live = next(e for e in recorder.jobs if e.event == "live")
    assert (live.voice, live.avatar) == ("openai-realtime", "anam")

    # the avatar joined with the token the plugin minted for it, and publishes video
    record = await anam.wait_for_avatar("publishing")
    request = anam.requests_to("/v1/engine/session")[-1]
    assert request.bearer == ANAM_KEY
    assert request.json["personaConfig"]["avatarId"] == "cara-avatar-id"
    assert request.json["personaConfig"]["avatarModel"] == "cara-4-latest"
    # the host's state attribute reaches the viewer through LiveKit's signalling, on its own time
    await until(lambda: viewer.host() is not None, 10, "the host's state attribute")
    host = viewer.host()
    assert host is not None
    assert (record.room, record.identity, record.agent_identity) == (
        room,
        ANAM_AVATAR_IDENTITY,
        host.identity,
    )
    await until(lambda: video_from(viewer, ANAM_AVATAR_IDENTITY), 15, "the avatar's video")
    assert realtime.requests[-1].bearer == OPENAI_KEY

    # a chat message gets the model's reply: heard through the avatar, its transcript published
    message = chat_message(room, "What are we watching tonight?", author_name="Ada")
    asked = time.time()
    await bus.publish(subjects.chat_approved(room), message)
    await until(lambda: recorder.spoken, 20, "the reply on host.spoken")
    turn = recorder.spoken[0]
    assert (turn.text, turn.reply_to, turn.kind) == (REPLY, [message.id], "reply")
    assert len(viewer.audio.loud_since(asked)) > 50  # over half a second of speech
    # the agent's audio went to the avatar, which reported playing it (on its own time)
    await anam.wait_until(
        lambda: (
            record.audio_seconds_received > 1.0
            and record.playback_started >= 1
            and record.playback_finished >= 1
        )
    )
    user_items = [
        e for e in realtime.events_of("conversation.item.create") if e["item"]["role"] == "user"
    ]
    assert "Ada" in str(user_items[-1]) and "What are we watching tonight?" in str(user_items[-1])

    # `say` is spoken verbatim by the model; `skip` cancels the response and the audio stops.
    # (The turn's text is what was captioned: a checked sentence at a time, so the skip comes
    # once the first sentence is through.)
    words = " ".join(["Please read this out loud."] * 12)
    said_at, skip_at = await say_then_skip(bus, room, viewer, words, heard_after_s=2.5)
    await realtime.wait_for_event("response.cancel")
    cancelled = await realtime.wait_for_response("cancelled")
    assert words.startswith(cancelled.transcript_sent.strip()) and cancelled.transcript_sent
    await until(lambda: len(recorder.spoken) >= 2, 10, "the skipped turn")
    assert recorder.spoken[1].interrupted and recorder.spoken[1].kind == "say"
    await anam.wait_until(lambda: record.clear_buffer_calls >= 1)
    await asyncio.sleep(1.5)  # the contract: no speech in this window, a second after the skip
    assert max(viewer.audio.loud_since(said_at)) < skip_at + 1.0, "audio went on after skip"

    # the job ends with the last viewer: usage from response.done, avatar minutes, spend
    await viewer.leave()
    await until(lambda: recorder.ended() is not None, 15, "the job's end")
    await anam.wait_for_avatar("closed")  # the avatar left with the job
    ended = recorder.ended()
    assert ended is not None
    usage = ended.usage
    sums = usage_sums(realtime.sent[sent_before:])  # this room's responses only
    assert usage["tokens.openai-realtime.output.audio"] == sums["output_audio"] > 0
    assert usage["tokens.openai-realtime.output.text"] == sums["output_text"] > 0
    assert usage["tokens.openai-realtime.input.text"] == sums["input_text"] > 0
    assert usage["avatar_s.anam"] > 2.0 and usage["audio_s.openai-realtime"] > 1.0
    assert usage["spend_usd"] == pytest.approx(
        usage["spend_usd.openai-realtime"] + usage["spend_usd.anam"], abs=2e-6
    )
    assert usage["spend_usd_room_today"] >= usage["spend_usd"] > 0
    name = metrics.MODEL_TOKENS.name
    assert (
        metric_total(name, room=room, backend="openai-realtime", modality="audio")
        == (sums["output_audio"])
    )
    assert metric_total(metrics.AVATAR_SESSION_TIME.name, room=room, backend="anam") == (
        pytest.approx(usage["avatar_s.anam"], abs=0.01)
    )
    assert metric_total(metrics.MODEL_AUDIO_TIME.name, room=room) == pytest.approx(
        usage["audio_s.openai-realtime"], abs=0.01
    )
    assert metric_total(metrics.MODEL_SPEND.name, room=room) == pytest.approx(
        usage["spend_usd"], abs=1e-5
    )
    assert not realtime.protocol_errors


async def test_the_pipeline_speaks_the_chat_models_words(
    production: Production, bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    chat = production.chat
    room = unique_room()
    recorder, viewer = await go_live(production.pipeline, bus, viewers, room)
    assert next(e for e in recorder.jobs if e.event == "live").voice == "pipeline"
    completions_before = len(chat.requests_to("/v1/chat/completions"))
    message = chat_message(room, "Which model is talking?", author_name="Ada")
    asked = time.time()
    await bus.publish(subjects.chat_approved(room), message)
    await until(lambda: recorder.spoken, 20, "the reply on host.spoken")
    assert recorder.spoken[0].text == PIPELINE_REPLY
    assert len(viewer.audio.loud_since(asked)) > 50
    await until(lambda: video_from(viewer, LOCAL_AVATAR_IDENTITY), 10, "the local avatar")

    request = chat.requests_to("/v1/chat/completions")[completions_before]
    assert request.bearer == CHAT_KEY
    assert request.json["model"] == "house-model" and request.json["stream"] is True
    assert "Which model is talking?" in str(request.json["messages"])
    spoken = " ".join(r.json["input"] for r in chat.requests_to("/v1/audio/speech"))
    assert "this answer comes from the chat model" in spoken  # its words went to the speech API

    await viewer.leave()
    await until(lambda: recorder.ended() is not None, 15, "the job's end")
    ended = recorder.ended()
    assert ended is not None
    assert ended.usage["tokens.pipeline.input.text"] > 0
    assert ended.usage["tokens.pipeline.output.text"] == len(PIPELINE_REPLY.split())
    assert ended.usage["audio_s.pipeline-speech"] > 1.0
    assert ended.usage["spend_usd.pipeline-speech"] > 0  # priced per minute; the model is free
    assert "spend_usd.pipeline" not in ended.usage


EXPECTED_REASON = {Fault.HTTP_500: "http_5xx", Fault.HTTP_401: "http_401", Fault.HANG: "timeout"}


@pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.HTTP_401, Fault.HANG])
async def test_each_double_failing_falls_back_to_local(
    production: Production, bus, viewers, caplog, fault: Fault
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="host_agent")
    reason = EXPECTED_REASON[fault]

    def fallbacks(kind: str, backend: str) -> float:
        name = metrics.BACKEND_FALLBACKS.name
        return metric_total(name, kind=kind, backend=backend, reason=reason)

    before = {
        key: fallbacks(*key)
        for key in (("voice", "openai-realtime"), ("avatar", "anam"), ("voice", "pipeline"))
    }
    for double in (production.realtime, production.anam, production.chat):
        double.fail(fault)
    try:
        realtime_room, pipeline_room = unique_room(), unique_room()
        (realtime_rec, realtime_viewer), (pipeline_rec, pipeline_viewer) = await asyncio.gather(
            go_live(production.worker, bus, viewers, realtime_room),
            go_live(production.pipeline, bus, viewers, pipeline_room),
        )
        # OpenAI Realtime and Anam fail at the start: the host goes on with the local ones
        live = next(e for e in realtime_rec.jobs if e.event == "live")
        assert live.avatar == "local"
        await until(
            lambda: fallbacks("voice", "openai-realtime") > before[("voice", "openai-realtime")],
            10,
            "the realtime voice to fall back",
        )
        assert fallbacks("avatar", "anam") == before[("avatar", "anam")] + 1
        # the pipeline's model fails at its first turn, which is then spoken locally
        message = chat_message(pipeline_room, "Are you still there?", author_name="Ada")
        await bus.publish(subjects.chat_approved(pipeline_room), message)
        said_at = time.time()
        await bus.publish(
            subjects.host_control(realtime_room), command(realtime_room, "say", "Still here.")
        )
        await until(
            lambda: fallbacks("voice", "pipeline") > before[("voice", "pipeline")],
            10,
            "the pipeline voice to fall back",
        )
        await until(lambda: realtime_rec.spoken and pipeline_rec.spoken, 15, "both rooms to talk")
        assert realtime_rec.spoken[0].text == "Still here."
        assert (
            pipeline_rec.spoken[0].reply_to == [message.id] and "Ada" in pipeline_rec.spoken[0].text
        )
        for viewer in (realtime_viewer, pipeline_viewer):  # viewers keep a host: voice and face
            assert len(viewer.audio.loud_since(said_at)) > 20
            await until(lambda v=viewer: video_from(v, LOCAL_AVATAR_IDENTITY), 10, "local video")
            await until(
                lambda v=viewer: "local" in host_attribute(v, attributes.HOST_VOICE),
                10,
                "the host's voice attribute to say local",
            )
    finally:
        production.heal()
    logged = caplog.text
    for backend in ("openai-realtime", "anam", "pipeline"):
        assert f"backend {backend} failed ({reason}:" in logged, logged[-3000:]


async def test_mid_stream_failures_fall_back_and_keep_what_works(
    production: Production, bus, viewers, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="host_agent")
    realtime, anam = production.realtime, production.anam
    room = unique_room()
    recorder, viewer = await go_live(production.worker, bus, viewers, room)
    record = await anam.wait_for_avatar("publishing")
    words = " ".join(["Stars are bright."] * 16)  # short sentences: the first is captioned soon
    said_at = time.time()
    await bus.publish(subjects.host_control(room), command(room, "say", words))

    def speaking_for_a_while() -> bool:
        # 1.5 s of the reply's audio sent (24 kHz, 16 bit) and heard: the drop lands mid-reply.
        # (Dropped before any of it was heard, the job rightly retries the whole line on the
        # local voice, and there is no cut-off turn to check.)
        return viewer.audio.loud_since(said_at + 0.5) and any(
            r.status == "in_progress" and r.audio_bytes_sent >= 1.5 * 48_000
            for r in realtime.responses
        )

    await until(speaking_for_a_while, 15, "the long speech")
    try:
        # the realtime socket drops mid-reply and the API stays down: local voice, same avatar
        realtime.fail(Fault.HTTP_500)
        for connection in list(realtime._connections):  # noqa: SLF001 - the double's sockets
            connection.drop()
        await until(lambda: recorder.spoken, 15, "the cut-off turn")
        assert recorder.spoken[0].interrupted and words.startswith(recorder.spoken[0].text)
        await until(lambda: "voice local" in caplog.text, 10, "the switch to the local voice")
        heard_by_avatar = record.audio_seconds_received
        back_at = time.time()
        await bus.publish(
            subjects.host_control(room), command(room, "say", "Back on my own voice.")
        )
        await until(lambda: len(recorder.spoken) >= 2, 15, "the local voice's turn")
        assert recorder.spoken[1].text == "Back on my own voice."
        assert viewer.audio.loud_since(back_at)
        assert record.audio_seconds_received > heard_by_avatar + 0.5  # Anam still speaks for it
        assert record.state == "publishing"

        # then the Anam avatar leaves the room: the local avatar takes over
        async with server_api(production.worker.livekit) as lk:
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=ANAM_AVATAR_IDENTITY)
            )
        await until(lambda: video_from(viewer, LOCAL_AVATAR_IDENTITY), 15, "the local avatar")
        again_at = time.time()
        await bus.publish(subjects.host_control(room), command(room, "say", "And my own face."))
        await until(lambda: len(recorder.spoken) >= 3, 15, "the local avatar's turn")
        assert viewer.audio.loud_since(again_at)
    finally:
        production.heal()
    assert "backend openai-realtime failed (http_5xx:" in caplog.text
    assert "backend anam failed (avatar_left:" in caplog.text


async def test_the_daily_spend_cap_switches_to_local(
    production: Production, bus, viewers, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="host_agent")
    cap = CostSettings().daily_cap_usd
    nearly, over = unique_room(), unique_room()
    day = spend_day(time.time())
    await production.redis.set(spend_key(nearly, day), cap - 1e-5)  # earlier jobs spent this
    await production.redis.set(spend_key(over, day), cap + 1.0)
    capped_before = metric_total(metrics.BACKEND_FALLBACKS.name, reason="spend_cap")
    (nearly_rec, nearly_viewer), (over_rec, _) = await asyncio.gather(
        go_live(production.worker, bus, viewers, nearly),
        go_live(production.worker, bus, viewers, over),
    )
    # over the cap already: the job starts on the local backends
    over_live = next(e for e in over_rec.jobs if e.event == "live")
    assert (over_live.voice, over_live.avatar) == ("local", "local")
    # just under it: the first paid reply crosses it, and the host switches
    live = next(e for e in nearly_rec.jobs if e.event == "live")
    assert (live.voice, live.avatar) == ("openai-realtime", "anam")
    await bus.publish(
        subjects.chat_approved(nearly), chat_message(nearly, "How much?", author_name="Ada")
    )
    await until(lambda: nearly_rec.spoken, 15, "the paid reply")
    await until(
        lambda: (
            metric_total(metrics.BACKEND_FALLBACKS.name, reason="spend_cap") >= capped_before + 4
        ),
        10,
        "both rooms' voice and avatar to be capped",
    )
    said_at = time.time()
    await bus.publish(subjects.host_control(nearly), command(nearly, "say", "Local from here."))
    await until(lambda: len(nearly_rec.spoken) >= 2, 15, "the local turn")
    assert len(nearly_viewer.audio.loud_since(said_at)) > 20
    await until(
        lambda: host_attribute(nearly_viewer, attributes.HOST_VOICE) == "local",
        10,
        "the host's voice attribute to say local",
    )
    spent = float(await production.redis.get(spend_key(nearly, day)) or 0)
    assert spent > cap  # counted in Redis, where the next job will find it
    assert "reached the daily cap" in caplog.text
