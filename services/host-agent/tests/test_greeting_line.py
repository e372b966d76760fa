"""The host's chat line (`host.spoken`) holds the whole greeting with `make run`'s backends
(voice `local` on espeak-ng, avatar `local`, no keys) and persona sage: a multi-sentence
greeting is published whole and not marked interrupted (which chat-history would show cut,
with an ellipsis)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from host_agent.settings import PERSONAS_DIR
from livestage.bus import Bus

from .conftest import HostWorker, go_live, running_worker, unique_room, until

SAGE_GREETING = "Good evening, and welcome. I'm Sage. Settle in; the chat is open."


@pytest.fixture(scope="module")
async def local_worker(livekit_server, nats_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    async with running_worker(
        livekit_server, nats_server, greet=True, voice="local", avatar="local",
        persona_file=PERSONAS_DIR / "sage.yaml",
    ) as worker:  # fmt: skip
        yield worker


async def test_the_greetings_chat_line_holds_every_sentence_with_the_local_backends(
    local_worker: HostWorker, bus: Bus, viewers
) -> None:  # type: ignore[no-untyped-def]
    recorder, _viewer = await go_live(local_worker, bus, viewers, unique_room(), timeout_s=40)
    await until(lambda: recorder.spoken, 40, "the greeting")
    greeting = recorder.spoken[0]
    assert (greeting.text, greeting.interrupted) == (SAGE_GREETING, False), greeting
