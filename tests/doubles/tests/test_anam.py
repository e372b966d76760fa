"""The Anam double against the real ``livekit-plugins-anam`` ``AvatarSession``, in a real room.

The agent side is what production runs: an ``AgentSession`` on the OpenAI Realtime plugin (here
against the Realtime double) whose audio the Anam plugin routes to the avatar participant. A
viewer client checks that the avatar's video and voice arrive.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest
from livekit.agents import Agent, AgentSession, APIConnectOptions, APIStatusError
from livekit.agents.voice import room_io
from livekit.plugins import anam as anam_plugin
from livekit.plugins.openai.realtime import RealtimeModel

from tests.doubles.anam import GREEN, SKIN, AnamDouble
from tests.doubles.base import Fault
from tests.doubles.openai_realtime import OpenAIRealtimeDouble
from tests.support.room import FakeJob, agent_token, fake_job, watching

AVATAR = "anam-avatar-host"
PERSONA = anam_plugin.PersonaConfig(
    name="Cara", avatarId="cara-avatar-id", avatarModel="cara-4-latest"
)


def avatar_session(anam: AnamDouble, **kwargs: Any) -> anam_plugin.AvatarSession:
    return anam_plugin.AvatarSession(
        persona_config=PERSONA,
        api_url=anam.url,
        api_key="test",
        avatar_participant_identity=AVATAR,
        **kwargs,
    )


def realtime_model(realtime: OpenAIRealtimeDouble) -> RealtimeModel:
    return RealtimeModel(
        model="gpt-realtime-2", voice="cedar", base_url=realtime.base_url, api_key="test"
    )


async def start_session(session: AgentSession[Any], job: FakeJob) -> None:
    await session.start(
        Agent(instructions="You host a live stream."),
        room=job.room,
        room_options=room_io.RoomOptions(audio_input=False),
    )


def _close(color: Any, expected: tuple[int, int, int]) -> bool:
    return all(abs(int(c) - e) <= 30 for c, e in zip(color[:3], expected, strict=True))


async def test_viewer_sees_and_hears_the_avatar_speak(
    anam: AnamDouble, realtime: OpenAIRealtimeDouble, livekit_server: Any
) -> None:
    room = f"anam-{uuid.uuid4().hex[:8]}"
    realtime.config.reply = "Welcome to the stream everyone, today we look at ships. " * 3
    model = realtime_model(realtime)
    async with watching(livekit_server, room) as viewer, fake_job(livekit_server, room) as job:
        session: AgentSession[Any] = AgentSession(llm=model)
        avatar = avatar_session(anam)
        try:
            await avatar.start(session, job.room)  # LIVEKIT_* from the fake job's environment
            await start_session(session, job)
            record = await anam.wait_for_avatar("publishing")
            await avatar.wait_for_join(timeout=10)  # the plugin's own check: the video is there
            frame = await viewer.wait_for_video(AVATAR)

            handle = session.generate_reply(instructions="Greet the viewers.")
            await viewer.wait_for_audio(AVATAR, loud_seconds=1.0)
            assert record.playback_started >= 1
            session.interrupt()  # skip: the plugin clears the avatar's buffer
            await anam.wait_until(lambda: record.clear_buffer_calls >= 1)
            await realtime.wait_for_event("response.cancel")
            async with asyncio.timeout(5):
                await handle
            await anam.wait_until(lambda: record.playback_finished >= 1)

            handle = session.generate_reply(instructions="Say goodbye.")
            realtime.config.reply = "Goodbye."
            async with asyncio.timeout(15):
                await handle  # completes only once the avatar reports playback finished
        finally:
            await session.aclose()
            await avatar.aclose()  # removes the avatar participant through the server API
            await model.aclose()
        await anam.wait_for_avatar("closed")  # ...and the double's avatar notices and leaves

    request = anam.requests_to("/v1/engine/session")[-1]
    assert request.bearer == "test"
    assert request.json["personaConfig"] == {
        "type": "ephemeral",
        "name": "Cara",
        "avatarId": "cara-avatar-id",
        "llmId": "CUSTOMER_CLIENT_V1",
        "avatarModel": "cara-4-latest",
    }
    assert request.json["environment"]["livekitUrl"] == livekit_server.url
    assert (record.room, record.identity, record.agent_identity) == (room, AVATAR, job.identity)
    assert avatar.session_id == record.session_id

    height, width = frame.shape[:2]
    assert _close(frame[2, 2], GREEN)  # keyable green around the face
    assert any(_close(frame[y, x], SKIN) for y in range(0, height, 8) for x in range(0, width, 8))
    assert record.interrupted_playbacks >= 1
    assert record.playback_finished >= 2 and record.segments_received >= 1
    assert record.audio_seconds_received > 1.0
    assert not handle.interrupted


@pytest.mark.parametrize(
    ("fault", "status", "requests"),
    [(Fault.HTTP_500, 500, 2), (Fault.HTTP_401, 401, 1)],  # a 500 is retried, a 401 is not
)
async def test_http_errors_raise_api_status_error(
    anam: AnamDouble, livekit_server: Any, fault: Fault, status: int, requests: int
) -> None:
    anam.fail(fault)
    room = f"anam-{uuid.uuid4().hex[:8]}"
    async with fake_job(livekit_server, room) as job:
        avatar = avatar_session(
            anam, conn_options=APIConnectOptions(max_retry=1, retry_interval=0.1)
        )
        with pytest.raises(APIStatusError) as raised:
            await avatar.start(AgentSession(), job.room)
        await avatar.aclose()
    assert raised.value.status_code == status
    assert raised.value.retryable is (status == 500)
    assert len(anam.requests) == requests
    assert not anam.sessions


async def test_hanging_api_never_returns_by_itself(anam: AnamDouble, livekit_server: Any) -> None:
    """The plugin sets only a connect timeout: a caller must bound ``start`` itself."""
    anam.fail(Fault.HANG)
    room = f"anam-{uuid.uuid4().hex[:8]}"
    async with fake_job(livekit_server, room) as job:
        avatar = avatar_session(anam, conn_options=APIConnectOptions(max_retry=0, timeout=0.5))
        started = asyncio.create_task(avatar.start(AgentSession(), job.room))
        await anam.wait_until(lambda: anam.requests)
        done, _ = await asyncio.wait({started}, timeout=1.5)
        started.cancel()
        await asyncio.gather(started, return_exceptions=True)
        await avatar.aclose()
    assert not done  # still waiting, well past the 0.5 s connect timeout


async def test_avatar_that_never_publishes_video_blocks_the_agents_audio(
    anam: AnamDouble, realtime: OpenAIRealtimeDouble, livekit_server: Any
) -> None:
    anam.fail(Fault.NO_VIDEO)
    realtime.config.pace = 0
    room = f"anam-{uuid.uuid4().hex[:8]}"
    model = realtime_model(realtime)
    async with fake_job(livekit_server, room) as job:
        session: AgentSession[Any] = AgentSession(llm=model)
        avatar = avatar_session(anam)
        try:
            await avatar.start(session, job.room)  # accepted: start() itself succeeds
            await start_session(session, job)
            record = await anam.wait_for_avatar("joined")
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await avatar.wait_for_join(timeout=1.0)
            assert time.monotonic() - started < 3
            handle = session.generate_reply(instructions="Say hello.")
            await realtime.wait_for_response("completed")  # the model answered in full
            done, _ = await asyncio.wait(
                {asyncio.ensure_future(handle.wait_for_playout())}, timeout=1.0
            )
        finally:
            await session.aclose()
            await avatar.aclose()
            await model.aclose()
    assert not done  # ...but none of it can play: the speech waits for the avatar's video
    assert record.state in ("joined", "closed") and record.publishing_at is None
    assert record.audio_seconds_received == 0


async def test_engine_session_checks_what_the_plugin_must_send(
    anam: AnamDouble, livekit_server: Any
) -> None:
    token = agent_token(livekit_server, "some-room")  # an agent token without publish_on_behalf
    good = {
        "personaConfig": {
            "type": "ephemeral",
            "name": "Cara",
            "avatarId": "a",
            "llmId": "CUSTOMER_CLIENT_V1",
        },
        "environment": {"livekitUrl": livekit_server.url, "livekitToken": token},
    }
    cases = [
        ({}, "test", 400, "personaConfig"),
        (
            {**good, "personaConfig": {**good["personaConfig"], "type": "stored"}},
            "test",
            400,
            "personaConfig.type",
        ),
        (
            {**good, "personaConfig": {**good["personaConfig"], "avatarId": ""}},
            "test",
            400,
            "personaConfig.avatarId",
        ),
        (
            {**good, "environment": {"livekitUrl": "wss://example.com", "livekitToken": token}},
            "test",
            400,
            "livekitUrl",
        ),
        (good, "test", 400, "lk.publish_on_behalf"),
        (good, None, 401, "API key"),
    ]
    async with aiohttp.ClientSession() as http:
        for body, key, status, mentions in cases:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with http.post(f"{anam.url}/v1/engine/session", json=body, headers=headers) as r:
                text = await r.text()
            assert (r.status, mentions in text) == (status, True), (body, text)
    assert not anam.sessions
