"""The chat path end to end, every piece real: a viewer posts through the edge's `/api/chat`,
moderation judges it, chat-history stores it and sends it through LiveKit to rtc viewers (with
tokens from the edge); a blocked message reaches only its author, with the reason; an operator
removes a message through the edge and every viewer is told."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.support.chat import ChatViewer, backend_env, chat_services, wait_for_participants

OPERATOR_SECRET = "e2e-operator-secret-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_SECRET}"}
BLOCKED_BODY = "you are a fucking idiot"


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


async def test_a_message_reaches_every_viewer_a_blocked_one_only_its_author(
    make_edge: EdgeFactory,  # noqa: F811
    chat_path: dict[str, Any],
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    tokens = [await edge.token(name) for name in ("Ada", "Bob", "Cy")]
    async with (
        ChatViewer.joined(livekit_server, edge.room, token=tokens[0]["token"]) as a,
        ChatViewer.joined(livekit_server, edge.room, token=tokens[1]["token"]) as b,
        ChatViewer.joined(livekit_server, edge.room, token=tokens[2]["token"]) as c,
    ):
        await wait_for_participants(a, {b.identity, c.identity})
        hello = await edge.chat(tokens[0]["token"], "hello   everyone <3")
        for viewer in (a, b, c):
            message = await viewer.wait_for_message(hello, within=15)
            assert (message.author_identity, message.author_name) == (a.identity, "Ada")
            assert (message.body, message.kind) == ("hello everyone <3", "viewer")

        blocked = await edge.chat(tokens[0]["token"], BLOCKED_BODY)
        await a.wait_until(lambda: bool(a.rejections()), within=15)
        (rejection,) = a.rejections()
        assert rejection.message_id == blocked
        assert rejection.reason  # a reason a viewer can read
        # B's next message arrives everywhere after the verdict: by then nobody else got it
        after = await edge.chat(tokens[1]["token"], "what did I miss?")
        for viewer in (a, b, c):
            await viewer.wait_for_message(after, within=15)
            assert blocked not in viewer.message_ids()
        assert b.rejections() == [] and c.rejections() == []

        history = await edge.client.get(
            "/api/chat/history", headers={"Authorization": f"Bearer {tokens[2]['token']}"}
        )
        assert history.status_code == 200, history.text
        assert [m["id"] for m in history.json()["messages"]] == [hello, after]

        # The operator removes the first message: gone from history, every viewer is told.
        listed = await edge.client.get("/api/operator/chat/messages", headers=OPERATOR)
        assert [m["id"] for m in listed.json()["messages"]] == [hello, after]
        removed = await edge.client.delete(
            f"/api/operator/chat/messages/{hello}", params={"reason": "test"}, headers=OPERATOR
        )
        assert removed.status_code == 202, removed.text
        assert removed.json()["messageId"] == hello
        for viewer in (a, b, c):
            await viewer.wait_until(lambda v=viewer: hello in v.removals())
        listed = await edge.client.get("/api/operator/chat/messages", headers=OPERATOR)
        assert [m["id"] for m in listed.json()["messages"]] == [after]


async def test_operator_removal_route_checks_its_input_and_its_secret(
    make_edge: EdgeFactory,  # noqa: F811
) -> None:
    edge = await make_edge(operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    response = await edge.client.delete("/api/operator/chat/messages/abc")
    assert response.status_code == 401
    response = await edge.client.delete("/api/operator/chat/messages/a.b", headers=OPERATOR)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "message_id"]
    response = await edge.client.delete(
        "/api/operator/chat/messages/abc", params={"reason": "x" * 301}, headers=OPERATOR
    )
    assert response.status_code == 422
    # Twice is fine: the removal is stored once (its id derives from the message id).
    first = await edge.client.delete("/api/operator/chat/messages/abc", headers=OPERATOR)
    second = await edge.client.delete("/api/operator/chat/messages/abc", headers=OPERATOR)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()


async def test_without_chat_history_the_operator_history_is_a_503(
    make_edge: EdgeFactory,  # noqa: F811
) -> None:
    edge = await make_edge(operator_secret=OPERATOR_SECRET, history_timeout_s=0.3)
    await edge.wait_for_bus()
    response = await edge.client.get("/api/operator/chat/messages", headers=OPERATOR)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    await asyncio.sleep(0)
