"""A backend that cannot start does not leave viewers without a host: the job logs why, counts
it (`livestage.host.backend_fallbacks`) and goes on with the local voice / the local avatar."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import AgentSession

from host_agent import switcher
from host_agent.avatars import AVATARS
from host_agent.avatars.none import NoAvatar
from host_agent.errors import BackendUnavailable
from host_agent.voices import VOICES
from host_agent.voices.base import SessionParts, VoiceBackend
from livestage import metrics, subjects
from livestage.registry import Registry

from .conftest import (
    HostWorker,
    command,
    go_live,
    metric_total,
    running_worker,
    unique_room,
    until,
)


class BrokenVoice(VoiceBackend):
    name = "broken-voice"

    def session_parts(self) -> SessionParts:
        raise BackendUnavailable("401 from the model API (test double)")


class BrokenAvatar(NoAvatar):
    """`none` whose start fails as a remote avatar's does when no video arrives."""

    name = "broken-avatar"

    async def start(self, agent_session: AgentSession[Any], room: rtc.Room) -> None:
        raise BackendUnavailable("the avatar never published video (test double)")


def with_member(registry: Registry[Any], member: type[Any]) -> Registry[Any]:
    """A copy of a family with one more member (the real family stays as it is)."""
    return Registry(registry.family, setting=registry.setting, members=(*registry, member))


@pytest.fixture
async def broken_worker(livekit_server, nats_server, monkeypatch) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    # the switcher builds the job's backends: it sees each family with a broken member more
    monkeypatch.setattr(switcher, "VOICES", with_member(VOICES, BrokenVoice))
    monkeypatch.setattr(switcher, "AVATARS", with_member(AVATARS, BrokenAvatar))
    async with running_worker(
        livekit_server, nats_server, voice="broken-voice", avatar="broken-avatar"
    ) as worker:
        yield worker


async def test_a_backend_that_cannot_start_falls_back_to_local(
    broken_worker: HostWorker, bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    room = unique_room()
    # counted by backend: other tests' jobs in this process fall back too (before or meanwhile)
    voice_before = metric_total(
        metrics.BACKEND_FALLBACKS.name, kind="voice", backend="broken-voice"
    )
    avatar_before = metric_total(
        metrics.BACKEND_FALLBACKS.name, kind="avatar", backend="broken-avatar"
    )
    recorder, viewer = await go_live(broken_worker, bus, viewers, room)
    live = next(e for e in recorder.jobs if e.event == "live")
    assert (live.voice, live.avatar) == ("local", "local")  # broken avatar -> the drawn one
    assert (
        metric_total(metrics.BACKEND_FALLBACKS.name, kind="voice", backend="broken-voice")
        == voice_before + 1
    )
    assert (
        metric_total(metrics.BACKEND_FALLBACKS.name, kind="avatar", backend="broken-avatar")
        == avatar_before + 1
    )

    started = time.time()
    await bus.publish(subjects.host_control(room), command(room, "say", "Still here, all good."))
    await until(lambda: viewer.audio.loud_since(started), 15, "the fallback voice at the viewer")
