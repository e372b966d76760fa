"""LiveKit, for real: server API, tokens and grants, server-sent data, and media on 127.0.0.1.

Every test uses its own room name on the shared session server, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable

import numpy as np
from livekit import api, rtc

from tests.support.infra import LiveKitServer
from tests.support.livekit_helpers import (
    feed_sine,
    feed_solid_color,
    joined,
    mint_token,
    rms_int16,
    server_api,
    wait_for_event,
)
from tests.support.permissions import (
    assert_data_publish_refused,
    assert_track_publish_refused,
    wait_active,
)

CHAT_TOPIC = "anam-live-chat"


def new_room() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def test_create_room_through_server_api_is_listed(livekit_server: LiveKitServer) -> None:
    name = new_room()
    async with server_api(livekit_server) as lk:
        created = await lk.room.create_room(
            api.CreateRoomRequest(name=name, empty_timeout=60, metadata='{"purpose":"test"}')
        )
        try:
            assert created.name == name and created.sid.startswith("RM_")
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))
            assert [(r.name, r.sid, r.metadata) for r in listed.rooms] == [
                (name, created.sid, '{"purpose":"test"}')
            ]
            everything = await lk.room.list_rooms(api.ListRoomsRequest())
            assert name in {r.name for r in everything.rooms}
        finally:
            await lk.room.delete_room(api.DeleteRoomRequest(room=name))
        listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))
        assert list(listed.rooms) == []


async def test_server_send_data_reaches_every_client(livekit_server: LiveKitServer) -> None:
    room = new_room()
    token_a, token_b = (
        mint_token(livekit_server, identity, room, can_publish=False, can_publish_data=False)
        for identity in ("viewer_a_00000001", "viewer_b_00000002")
    )
    async with joined(livekit_server, token_a) as a, joined(livekit_server, token_b) as b:
        await wait_active(livekit_server, room, {"viewer_a_00000001", "viewer_b_00000002"})
        payload = f'{{"id":"{uuid.uuid4()}","body":"hello from the server"}}'.encode()

        def is_chat(packet: rtc.DataPacket) -> bool:
            return packet.topic == CHAT_TOPIC

        got_a = asyncio.create_task(wait_for_event(a, "data_received", is_chat, within=10))
        got_b = asyncio.create_task(wait_for_event(b, "data_received", is_chat, within=10))
        await asyncio.sleep(0)  # let both waiters register before the send
        async with server_api(livekit_server) as lk:
            await lk.room.send_data(
                api.SendDataRequest(
                    room=room, data=payload, kind=api.DataPacket.Kind.RELIABLE, topic=CHAT_TOPIC
                )
            )
        for got in (got_a, got_b):
            (packet,) = await got
            assert packet.data == payload
            assert packet.topic == CHAT_TOPIC
            assert packet.kind == rtc.DataPacketKind.KIND_RELIABLE
            assert packet.participant is None  # sent by the server, not by a participant


async def test_token_without_publish_grant_cannot_publish_a_track(
    livekit_server: LiveKitServer,
) -> None:
    """The server ignores the publish request; the SDK gives up after its own 10 s timeout."""
    room = new_room()
    viewer_id = "viewer_nopub_0000000a"
    token = mint_token(livekit_server, viewer_id, room, can_publish=False, can_publish_data=False)
    await assert_track_publish_refused(livekit_server, token, viewer_id, room)


async def test_token_without_data_grant_cannot_publish_data(
    livekit_server: LiveKitServer,
) -> None:
    """``publish_data`` returns normally (the SDK does not check grants), but the server drops
    the packet: nobody receives it, while the same packet from a granted participant arrives."""
    room = new_room()
    viewer_id = "viewer_nodata_0000000b"
    token = mint_token(livekit_server, viewer_id, room, can_publish=False, can_publish_data=False)
    await assert_data_publish_refused(livekit_server, token, viewer_id, room, topic=CHAT_TOPIC)


async def test_audio_and_video_really_flow(livekit_server: LiveKitServer) -> None:
    room = new_room()
    width, height, color = 320, 240, (200, 40, 90)
    async with (
        joined(livekit_server, mint_token(livekit_server, "host", room)) as host,
        joined(
            livekit_server,
            mint_token(livekit_server, "viewer_media_0000000c", room, can_publish=False),
        ) as viewer,
    ):
        subscribed: dict[rtc.TrackKind.ValueType, rtc.Track] = {}
        both_subscribed = asyncio.Event()

        def on_subscribed(track: rtc.Track, *_: object) -> None:
            subscribed[track.kind] = track
            if len(subscribed) == 2:
                both_subscribed.set()

        viewer.on("track_subscribed", on_subscribed)

        audio_source = rtc.AudioSource(48000, 1)
        video_source = rtc.VideoSource(width, height)
        feeders = [
            asyncio.create_task(feed_sine(audio_source, frequency=440.0)),
            asyncio.create_task(feed_solid_color(video_source, width, height, color)),
        ]
        try:
            await host.local_participant.publish_track(
                rtc.LocalAudioTrack.create_audio_track("sine", audio_source),
                rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
            )
            await host.local_participant.publish_track(
                rtc.LocalVideoTrack.create_video_track("color", video_source),
                rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA),
            )
            async with asyncio.timeout(15):
                await both_subscribed.wait()

            audio, video = await asyncio.gather(
                _receive_audio(subscribed[rtc.TrackKind.KIND_AUDIO]),
                _receive_video(subscribed[rtc.TrackKind.KIND_VIDEO], frames=15),
            )
        finally:
            for task in feeders:
                task.cancel()
            await audio_source.aclose()
            await video_source.aclose()

    # Audio: loud, and the tone that was sent.
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    assert rms > 3000, f"audio too quiet: rms={rms:.0f}"
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    peak_hz = float(np.fft.rfftfreq(audio.size, 1 / 48000)[np.argmax(spectrum)])
    assert abs(peak_hz - 440.0) < 10, f"dominant frequency {peak_hz:.1f} Hz, sent 440 Hz"

    # Video: enough frames, of the colour that was sent (VP8 is lossy: compare loosely).
    assert len(video) >= 15
    last = video[-1]
    assert (last.width, last.height) == (width, height)
    rgba = np.frombuffer(last.convert(rtc.VideoBufferType.RGBA).data, dtype=np.uint8)
    mean_rgb = rgba.reshape(-1, 4)[:, :3].mean(axis=0)
    assert np.all(np.abs(mean_rgb - np.array(color)) < 25), f"mean colour {mean_rgb}"


async def test_clients_are_given_the_loopback_stun_server(
    fresh_livekit: Callable[..., LiveKitServer],
) -> None:
    """The join response points clients at our 127.0.0.1 STUN port (so never at the public STUN
    servers livekit-server hands out when none is configured): listen there and see a client's
    STUN Binding Request arrive."""
    server = fresh_livekit()
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stun:
        stun.bind(("127.0.0.1", server.stun_port))
        stun.setblocking(False)
        async with joined(server, mint_token(server, "stun_probe", new_room())):
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(stun, 2048), 10)
    assert data[:2] == b"\x00\x01"  # STUN Binding Request
    assert data[4:8] == bytes.fromhex("2112a442")  # STUN magic cookie


async def _receive_audio(track: rtc.Track, seconds: float = 0.5) -> np.ndarray:
    """Skip leading silence, then return ``seconds`` of received int16 samples (48 kHz mono)."""
    stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
    chunks: list[np.ndarray] = []
    silent = 0
    try:
        async with asyncio.timeout(15):
            async for event in stream:
                if not chunks and rms_int16(event.frame) < 1000:
                    silent += 1  # jitter buffer still filling
                    continue
                chunks.append(np.frombuffer(event.frame.data, dtype=np.int16))
                if sum(c.size for c in chunks) >= seconds * 48000:
                    break
    except TimeoutError:
        raise AssertionError(
            f"no {seconds} s of sound within 15 s: {silent} silent frames, {len(chunks)} loud ones"
        ) from None
    finally:
        await stream.aclose()
    return np.concatenate(chunks)


async def _receive_video(track: rtc.Track, frames: int) -> list[rtc.VideoFrame]:
    stream = rtc.VideoStream(track)
    received: list[rtc.VideoFrame] = []
    try:
        async with asyncio.timeout(15):
            async for event in stream:
                received.append(event.frame)
                if len(received) >= frames:
                    break
    except TimeoutError:
        raise AssertionError(f"{len(received)} video frames within 15 s, wanted {frames}") from None
    finally:
        await stream.aclose()
    return received
