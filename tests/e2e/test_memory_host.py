"""The host remembers its regulars (#21's proof on the local voice): two shows in a row in one
room with the same visitor (the edge's cookie kept: the same visitor tag). Moderation and
chat-history as processes, a host-agent worker (local voice) and the edge in process, an rtc
viewer with the edge's tokens, the session's Redis.

Show 1: the viewer says "I'm from Lisbon", asks about the aurora, and posts a message moderation
rejects; their memory card (Redis) holds the fact and the question, never the rejected text. The
viewer leaves: the job ends. Show 2: the same visitor comes back: the host welcomes them back by
name and calls back to their question. Then the visitor asks to be forgotten (`DELETE
/api/me/memory`, the page's "Forget me"): in show 3 the host greets them as a newcomer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.memory import MemoryCard, MemoryStore, card_key, erased_key, memory_key_of
from livestage.schemas import HostJobEvent, SpokenTurn
from livestage.settings import NatsSettings, RedisSettings
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.support.chat import ChatViewer, backend_env, chat_services
from tests.support.host_worker import HostWorker, running_worker
from tests.support.waiting import until

pytestmark = pytest.mark.browser


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


@pytest.fixture
async def host(livekit_server, nats_server, redis_server) -> AsyncIterator[HostWorker]:  # type: ignore[no-untyped-def]
    async with running_worker(
        livekit_server,
        nats_server,
        services={"redis": RedisSettings(url=redis_server.url)},
        greet=True,
        viewer_wait_s=30.0,
        empty_grace_s=1.0,
        batch_window_s=0.3,
    ) as worker:
        yield worker


async def card_where(
    store: MemoryStore, key: str, check: Callable[[MemoryCard], bool], within: float, what: str
) -> MemoryCard:
    """Poll the viewer's card in Redis (bounded) until `check` holds."""
    deadline = time.monotonic() + within
    while True:
        card = await store.card(key)
        if card is not None and check(card):
            return card
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}: {card}")
        await asyncio.sleep(0.1)


async def test_a_regular_is_welcomed_back_with_what_they_asked_last_show(  # type: ignore[no-untyped-def]
    make_edge: EdgeFactory,  # noqa: F811
    chat_path: dict[str, Any],
    host: HostWorker,
    livekit_server,
    nats_server,
    redis_server,
) -> None:
    room = f"memory-{uuid.uuid4().hex[:8]}"
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "memory-host")
    await bus.ensure_streams()
    redis = Redis.from_url(redis_server.url)
    store = MemoryStore(redis, retention_days=180)
    spoken: list[SpokenTurn] = []
    jobs: list[HostJobEvent] = []

    async def on_spoken(observed: Observed[SpokenTurn]) -> None:
        spoken.append(observed.model)

    async def on_job(observed: Observed[HostJobEvent]) -> None:
        jobs.append(observed.model)

    since = time.time() - 1
    watches = [
        await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken, start=since),
        await bus.watch(subjects.host_job(room), HostJobEvent, on_job, start=since),
    ]
    key = ""
    try:
        edge = await make_edge(room=room, agent_name=host.agent_name)
        await edge.wait_for_bus()
        first = (await edge.token("Marta"))["token"]
        async with ChatViewer.joined(livekit_server, room, token=first) as viewer:
            key = memory_key_of(viewer.identity) or ""
            assert key, viewer.identity
            await until(lambda: [j for j in jobs if j.event == "live"], 60, "show 1 live")
            rejected = await edge.chat(first, "you are a stupid idiot")
            await edge.chat(first, "I'm from Lisbon")
            asked = await edge.chat(first, "Did the aurora ever show up over Lisbon?")
            card = await card_where(
                store,
                key,
                lambda c: bool(c.facts and c.questions),
                30,
                "the fact and the question to be remembered",
            )
            assert [f.text for f in card.facts] == ["is from Lisbon"]
            assert [q.message_id for q in card.questions] == [asked]
            await until(lambda: rejected in [r.message_id for r in viewer.rejections()], 20)
        # the viewer left: the job ends (grace 1 s)
        await until(lambda: [j for j in jobs if j.event == "ended"], 30, "show 1 to end")
        card = await store.card(key)
        assert card is not None and card.shows.count == 1
        assert "idiot" not in card.model_dump_json()  # a rejected message is never remembered

        # show 2: the same visitor (the edge client's cookie) comes back
        second = (await edge.token("Marta"))["token"]
        async with ChatViewer.joined(livekit_server, room, token=second) as viewer:
            assert memory_key_of(viewer.identity) == key
            welcome = await until(
                lambda: [t for t in spoken if t.text.startswith("Welcome back, Marta!")],
                60,
                "the host to welcome Marta back",
            )
            assert "aurora ever show up over Lisbon" in welcome[0].text, welcome[0]
            assert len(welcome) == 1  # one callback per show
        card = await card_where(store, key, lambda c: c.shows.count == 2, 10, "two shows")
        await until(lambda: len([j for j in jobs if j.event == "ended"]) >= 2, 30, "show 2 to end")

        # "Forget me" (what the page's button sends), then show 3: a first greeting again
        forgot = await edge.client.delete("/api/me/memory", headers={"X-Livestage-Viewer": "1"})
        assert forgot.status_code == 200, forgot.text
        assert await store.card(key) is None
        heard = len(spoken)
        third = (await edge.token("Marta"))["token"]
        async with ChatViewer.joined(livekit_server, room, token=third) as viewer:
            assert memory_key_of(viewer.identity) == key
            greeting = await until(
                lambda: [t for t in spoken[heard:] if "welcome in" in t.text.lower()],
                60,
                "the host's first greeting in show 3",
            )
            assert not [t for t in spoken[heard:] if t.text.startswith("Welcome back")], greeting
    finally:
        for watch in watches:
            await watch.stop()
        if key:
            await redis.delete(card_key(key), erased_key(key))
        await bus.close()
        await redis.aclose()
