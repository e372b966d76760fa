"""The pure parts of the dependency status and of `/media`'s slots (no servers)."""

from __future__ import annotations

import asyncio

import pytest

from token_service.media_guard import ClientStreams, Refused, Slots
from token_service.status import Dependency, DependencyState, StatusBoard, judge, overall


def test_a_probe_is_ok_degraded_when_slow_or_partial_and_down_when_it_fails() -> None:
    assert judge(0.1, 2.0, None) == "ok"
    assert judge(1.5, 2.0, None) == "degraded"  # slower than half its timeout
    assert judge(0.1, 2.0, "connected, JetStream not answering") == "degraded"
    assert judge(0.1, 2.0, ConnectionError("refused")) == "down"
    assert judge(2.0, 2.0, TimeoutError()) == "down"


def test_the_edge_is_degraded_when_any_dependency_is_not_ok() -> None:
    def state(name: str, value: str) -> DependencyState:
        return DependencyState(name, value, "", 1, ())  # type: ignore[arg-type]

    assert overall([state("nats", "ok"), state("redis", "ok")]) == "ok"
    assert overall([state("nats", "ok"), state("livekit", "down")]) == "degraded"


async def test_the_board_checks_once_per_round_whatever_the_readers() -> None:
    calls = 0

    async def livekit() -> str | None:
        nonlocal calls
        calls += 1
        return None

    async def redis() -> str | None:
        raise ConnectionError("refused")

    board = StatusBoard(
        [Dependency("livekit", livekit, 1.0, ("tokens",)), Dependency("redis", redis, 1.0, ())],
        interval_s=3600,
    )
    task = asyncio.create_task(board.run())
    try:
        seen = await asyncio.gather(*(board.current() for _ in range(100)))
    finally:
        task.cancel()
    assert calls == 1
    assert {s["livekit"].state for s in seen} == {"ok"}
    assert seen[0]["redis"].state == "down" and seen[0]["redis"].detail == "refused"
    assert sorted(board.observe()) == [
        (0.0, {"dependency": "redis"}),
        (1.0, {"dependency": "livekit"}),
    ]


def test_a_client_gets_its_share_of_streams_and_no_more() -> None:
    streams = ClientStreams(limit=2)
    streams.acquire("10.0.0.1")
    streams.acquire("10.0.0.1")
    with pytest.raises(Refused) as refused:
        streams.acquire("10.0.0.1")
    assert refused.value.reason == "client_streams"
    assert "media-streams-per-client" in str(refused.value)
    streams.acquire("10.0.0.2")  # others are not affected
    streams.release("10.0.0.1")
    streams.acquire("10.0.0.1")
    assert streams.in_flight("10.0.0.1") == 2 and streams.in_flight() == 3


async def test_a_full_slot_pool_refuses_after_its_short_wait_and_frees_on_release() -> None:
    slots = Slots("streaming", "TOKEN_MEDIA_MAX_STREAMS", size=1, wait_s=0.05)
    async with slots.hold():
        with pytest.raises(Refused) as refused:
            await slots.acquire()
        assert refused.value.reason == "busy" and "TOKEN_MEDIA_MAX_STREAMS=1" in str(refused.value)
    assert slots.in_use == 0
    await slots.acquire()
    assert slots.in_use == 1
