"""The host's attributes reach the server in the order they were wanted, one call at a time."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from livekit import rtc

from host_agent.attributes import STATE_ATTRIBUTE, HostAttributes


class Room:
    def isconnected(self) -> bool:
        return True


async def test_quick_state_changes_end_on_the_last_one_sent_one_call_at_a_time() -> None:
    calls: list[dict[str, str]] = []
    in_flight = 0
    most_in_flight = 0
    tasks: list[asyncio.Task[Any]] = []

    async def send(changed: dict[str, str]) -> None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0.05)  # a server that takes a while to answer
        calls.append(changed)
        in_flight -= 1

    attributes = HostAttributes(
        cast(rtc.Room, Room()), lambda c: tasks.append(asyncio.ensure_future(c)), send
    )
    for state in ("speaking", "thinking", "idle"):  # the end of a turn, within milliseconds
        attributes.show(state=state, persona="Nova", voice="local", avatar="none")
    while tasks and not all(t.done() for t in tasks):
        await asyncio.gather(*tasks)
    assert most_in_flight == 1
    assert calls[-1][STATE_ATTRIBUTE] == "idle"
    assert attributes.published[STATE_ATTRIBUTE] == "idle"


async def test_a_failed_call_is_tried_again_and_only_then_counted_as_sent() -> None:
    failures = [RuntimeError("engine: timeout")]
    calls: list[dict[str, str]] = []
    tasks: list[asyncio.Task[Any]] = []

    async def send(changed: dict[str, str]) -> None:
        if failures:
            raise failures.pop()
        calls.append(changed)

    attributes = HostAttributes(
        cast(rtc.Room, Room()), lambda c: tasks.append(asyncio.ensure_future(c)), send
    )
    attributes.RETRY_S = 0.01
    attributes.show(state="idle", persona="Nova", voice="local", avatar="none")
    await asyncio.gather(*tasks)
    assert calls and calls[-1][STATE_ATTRIBUTE] == "idle"
    assert attributes.published[STATE_ATTRIBUTE] == "idle"
    attributes.show(state="idle", persona="Nova", voice="local", avatar="none")
    assert len(tasks) == 1  # nothing new to send
