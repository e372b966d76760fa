"""A viewer who was away catches up through the edge's history route, paged with `after`.

Real edge, real chat-history process, livekit-server, NATS and Redis. A viewer holds the first
messages live, leaves the room (its connection is gone: LiveKit keeps nothing for it), 120
messages are approved meanwhile (more than the 50 of a plain history read), it joins again with
a fresh token and, as the page does, asks for what was stored after the newest message it held,
page by page, merging by id: it ends with every message exactly once and in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, now_ms
from livestage.settings import NatsSettings
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.support.chat import ChatViewer, backend_env, chat_message, chat_services

HELD = 10
AWAY = 120
PAGE = 50


@pytest.fixture
def chat_history_process(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    env = backend_env(nats_server, redis_server, livekit_server)
    with chat_services(env, moderation=False) as processes:
        yield processes


async def history_page(edge: Any, token: str, **params: str) -> dict[str, Any]:
    response = await edge.client.get(
        "/api/chat/history", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_viewer_back_from_a_disconnect_pages_through_everything_it_missed(
    make_edge: EdgeFactory,  # noqa: F811
    chat_history_process: dict[str, Any],
    livekit_server,  # type: ignore[no-untyped-def]
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge()
    await edge.wait_for_bus()
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "resume-test")
    base = now_ms() - 1_000
    published: list[ChatMessage] = []

    async def approve(count: int) -> list[ChatMessage]:
        batch = [
            chat_message(
                edge.room, f"line {len(published) + n}", created_at=base + len(published) + n
            )
            for n in range(count)
        ]
        for message in batch:
            await bus.publish(subjects.chat_approved(edge.room), message)
        published.extend(batch)
        return batch

    shown: list[str] = []  # the page's list: ids, merged by id

    def merge(messages: list[dict[str, Any]] | list[ChatMessage]) -> None:
        for message in messages:
            message_id = message.id if isinstance(message, ChatMessage) else message["id"]
            if message_id not in shown:
                shown.append(message_id)

    try:
        watcher_token = (await edge.token("Watcher"))["token"]
        async with ChatViewer.joined(livekit_server, edge.room, token=watcher_token) as watcher:
            viewer_token = (await edge.token("Ada"))["token"]
            async with ChatViewer.joined(livekit_server, edge.room, token=viewer_token) as viewer:
                held = await approve(HELD)
                await viewer.wait_until(lambda: len(set(viewer.message_ids())) == HELD, within=30)
                merge(viewer.messages())
            cursor = shown[-1]  # the newest message it held when the connection went

            missed = await approve(AWAY)
            # stored before sent: once another viewer has them all, history has them all
            await watcher.wait_until(
                lambda: {m.id for m in missed} <= set(watcher.message_ids()), within=60
            )

            back_token = (await edge.token("Ada"))["token"]
            async with ChatViewer.joined(livekit_server, edge.room, token=back_token) as back:
                pages: list[dict[str, Any]] = []
                after = cursor
                while True:
                    page = await history_page(edge, back_token, after=after, limit=str(PAGE))
                    pages.append(page)
                    merge(page["messages"])
                    if not page["more"]:
                        break
                    after = page["messages"][-1]["id"]
                # and live chat goes on for it
                (later,) = await approve(1)
                await back.wait_for_message(later.id, within=30)
                merge(back.messages())
    finally:
        await bus.close()

    paged = [m["id"] for page in pages for m in page["messages"]]
    # chat-history stores a batch concurrently, so a few held ones may have been stored after
    # the newest one held: they come again and the merge drops them (as the page does)
    assert len(pages) >= 3 and all(len(page["messages"]) == PAGE for page in pages[:-1])
    assert [page["more"] for page in pages] == [True] * (len(pages) - 1) + [False]
    assert not any(page["gap"] for page in pages)
    assert len(paged) == len(set(paged))  # no page repeats another
    assert {m.id for m in missed} <= set(paged)
    assert set(paged) - {m.id for m in missed} <= {m.id for m in held} - {cursor}
    # the page orders by createdAt (ties by arrival): every message once, in order
    by_id = {m.id: m for m in published}
    assert sorted(shown, key=lambda i: by_id[i].created_at) == [m.id for m in published]
    assert len(shown) == len(published) == HELD + AWAY + 1

    # A cursor history no longer has: the newest instead, and the page is told of the gap.
    gone = await history_page(edge, back_token, after="no-such-message", limit="5")
    assert [m["id"] for m in gone["messages"]] == [m.id for m in published[-5:]]
    assert (gone["more"], gone["gap"]) == (False, True)
