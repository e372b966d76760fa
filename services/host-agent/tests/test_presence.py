"""The host's presence logic (`host_agent/presence.py`) in a real livekit-server room: a viewer
and the OBS stage page are an audience, the operator console's preview is not (issue #20: an open
console must not keep a host, and its paid sessions, running)."""

from __future__ import annotations

import asyncio
import time
import uuid

from host_agent.presence import RoomPresence
from tests.support.identities import preview_identity, viewer_identity
from tests.support.livekit_helpers import joined, mint_token
from tests.support.waiting import until


async def test_the_console_preview_is_no_viewer_and_a_viewer_is(livekit_server) -> None:  # type: ignore[no-untyped-def]
    room = f"presence-{uuid.uuid4().hex[:8]}"
    welcomed: list[str] = []
    left: list[str] = []
    preview, viewer = preview_identity(), viewer_identity()

    def audience_token(identity: str) -> str:
        return mint_token(livekit_server, identity, room, can_publish=False, can_publish_data=False)

    async with joined(livekit_server, mint_token(livekit_server, "host-under-test", room)) as lk:
        presence = RoomPresence(
            lk,
            clock=time.monotonic,
            grace_s=60,
            on_viewer_joined=welcomed.append,
            on_participant_lost=lambda identity, reason, what: left.append(identity),
            on_disconnected=lambda: None,
            wake=asyncio.Event(),
        )
        presence.follow()
        try:
            async with joined(livekit_server, audience_token(preview)):
                await until(lambda: presence.present(preview), 10, "the preview in the room")
                assert presence.viewers == set()
                assert presence.empty_since is not None  # the grace runs with only a preview
                assert welcomed == []
                async with joined(livekit_server, audience_token(viewer)):
                    await until(lambda: viewer in presence.viewers, 10, "the viewer counted")
                    assert presence.viewers == {viewer}
                    assert presence.empty_since is None
                    assert welcomed == [viewer]
                await until(lambda: viewer in left, 10, "the viewer gone")
                assert presence.viewers == set() and presence.empty_since is not None
        finally:
            presence.stop()
