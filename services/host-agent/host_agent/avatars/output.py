"""The session's audio to a video avatar, with playback reports kept apart per room.

livekit-agents 1.8.9's `DataStreamAudioOutput` keeps the handlers of the avatar's playback RPCs
(`lk.playback_started`, `lk.playback_finished`) in a dict on the class, keyed by the avatar's
identity alone. Every room's avatar has the same identity (`avatar-host`, `anam-avatar-host`),
so with several jobs in one process (`HOST_EXECUTOR=thread`) one room's avatar would report
playback to another room's session: speeches there end early or never. `RoomAudioOutput` keeps
those handlers per room and registers a dispatcher on each room's own participant.

    route_audio(session, room, "anam-avatar-host")   # before session.start(...)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput

RPC_PLAYBACK_STARTED = "lk.playback_started"
RPC_PLAYBACK_FINISHED = "lk.playback_finished"
SAMPLE_RATE = 24000
"""The rate the session's audio goes to the avatar at (Anam's and ours)."""

Handler = Callable[[rtc.RpcInvocationData], str]


class RoomAudioOutput(DataStreamAudioOutput):
    """`DataStreamAudioOutput` whose playback RPC handlers are per room (see the module doc)."""

    _rooms: ClassVar[weakref.WeakKeyDictionary[rtc.Room, dict[str, dict[str, Handler]]]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def _register(cls, room: rtc.Room, method: str, caller_identity: str, handler: Handler) -> None:
        handlers = cls._rooms.setdefault(room, {}).setdefault(method, {})
        handlers[caller_identity] = handler

        def dispatch(data: rtc.RpcInvocationData) -> str:
            target = handlers.get(data.caller_identity)
            return target(data) if target is not None else "reject"

        # (re)registered every time: a stock output in this room may have put its own there
        room.local_participant.register_rpc_method(method, dispatch)

    @classmethod
    def _register_playback_finished_rpc(
        cls, room: rtc.Room, *, caller_identity: str, handler: Handler
    ) -> None:
        cls._register(room, RPC_PLAYBACK_FINISHED, caller_identity, handler)

    @classmethod
    def _register_playback_started_rpc(
        cls, room: rtc.Room, *, caller_identity: str, handler: Handler
    ) -> None:
        cls._register(room, RPC_PLAYBACK_STARTED, caller_identity, handler)


def avatar_audio_output(room: rtc.Room, identity: str) -> RoomAudioOutput:
    """Audio to the avatar `identity` in `room`, as the host sends it: speech waits for the
    avatar's video and its `lk.playback_started`."""
    return RoomAudioOutput(
        room,
        destination_identity=identity,
        sample_rate=SAMPLE_RATE,
        wait_remote_track=rtc.TrackKind.KIND_VIDEO,
        wait_playback_start=True,
    )


def route_audio(session: AgentSession[Any], room: rtc.Room, identity: str) -> None:
    """Send `session`'s audio to the avatar `identity`; speech waits for its video and its
    `lk.playback_started` (so the host's state follows what viewers hear)."""
    session.output.replace_audio_tail(avatar_audio_output(room, identity))
