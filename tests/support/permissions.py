"""Checks that a token really may not publish, against a real livekit-server.

The Python SDK does not check grants itself: the server refuses. A refused track publish times
out in the SDK (PublishTrackError after its own 10 s); a refused data packet is dropped silently,
so the check sends one from a granted participant right after and sees only that one arrive.
"""

from __future__ import annotations

import asyncio

import pytest
from livekit import api, rtc
from livekit.rtc.participant import PublishTrackError

from tests.support.livekit_helpers import (
    LiveKitEndpoint,
    feed_sine,
    joined,
    mint_token,
    server_api,
)
from tests.support.waiting import until


async def wait_active(server: LiveKitEndpoint, room: str, identities: set[str]) -> None:
    """Until the server reports each identity ACTIVE (ICE connected, data channels usable)."""
    async with server_api(server) as lk:
        async with asyncio.timeout(15):
            while True:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
                active = {
                    p.identity for p in resp.participants if p.state == api.ParticipantInfo.ACTIVE
                }
                if identities <= active:
                    return
                await asyncio.sleep(0.05)


async def assert_track_publish_refused(
    server: LiveKitEndpoint, token: str, identity: str, room: str
) -> None:
    """Joining with `token` works, but publishing a track is refused and nobody sees one."""
    watcher_token = mint_token(server, "watcher", room)
    async with joined(server, token) as viewer, joined(server, watcher_token) as watcher:
        permissions = viewer.local_participant.permissions
        assert (permissions.can_publish, permissions.can_publish_data) == (False, False)
        assert permissions.can_subscribe is True

        published: list[rtc.RemoteTrackPublication] = []
        watcher.on("track_published", lambda pub, participant: published.append(pub))

        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        feeding = asyncio.create_task(feed_sine(source))
        try:
            with pytest.raises(PublishTrackError, match="timed out"):
                async with asyncio.timeout(30):
                    await viewer.local_participant.publish_track(
                        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
                    )
        finally:
            feeding.cancel()
            await source.aclose()

        assert viewer.local_participant.track_publications == {}
        assert published == []
        assert watcher.remote_participants[identity].track_publications == {}
        async with server_api(server) as lk:
            info = await lk.room.get_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
        assert list(info.tracks) == []
        assert viewer.isconnected()  # refused, not thrown out


async def assert_data_publish_refused(
    server: LiveKitEndpoint, token: str, identity: str, room: str, topic: str
) -> None:
    """Data sent with `token` never arrives, while the same packet from a granted peer does."""
    sender_token = mint_token(server, "allowed_sender", room)
    watcher_token = mint_token(server, "watcher", room)
    async with (
        joined(server, token) as viewer,
        joined(server, sender_token) as sender,
        joined(server, watcher_token) as watcher,
    ):
        await wait_active(server, room, {identity, "allowed_sender", "watcher"})
        received: list[rtc.DataPacket] = []
        watcher.on("data_received", received.append)

        # the refused message first: no error is raised to the sender
        await asyncio.wait_for(
            viewer.local_participant.publish_data(b"not allowed", topic=topic), 10
        )
        # then a control message on the same topic from a participant that may publish data
        await asyncio.wait_for(sender.local_participant.publish_data(b"allowed", topic=topic), 10)
        await until(lambda: any(p.data == b"allowed" for p in received), within=10)
        await asyncio.sleep(1.0)  # grace for a straggler, which must not come

        assert [(p.data, p.participant and p.participant.identity) for p in received] == [
            (b"allowed", "allowed_sender")
        ]
