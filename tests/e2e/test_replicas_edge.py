"""Two edge processes on one NATS, Redis and LiveKit behave as one edge: a visitor and a viewer
token from one are good on the other, rate limits are spent across both, a console session
signed in on one works on the other and a sign-out on either revokes it on both, and chat posted
through the other replica reaches viewers once (the real moderation and chat-history run)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.chat import ChatViewer, backend_env, chat_services
from tests.support.edge_process import PROFILE, running_edges
from tests.support.services import edge_env, end_service, free_port, start_service_until
from token_service.routes.operator.auth import SESSION_COOKIE
from token_service.visitors import COOKIE_NAME as VISITOR_COOKIE

SECRET = "replicas-edge-operator-secret-0123456789"
OPERATOR_HEADER = {"X-Livestage-Operator": "1"}


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


def _start_edge(env: dict[str, str]) -> Any:
    return start_service_until("token_service", env, "Application startup complete")


async def test_two_edges_share_visitors_limits_sessions_and_chat(  # type: ignore[no-untyped-def]
    nats_server, redis_server, livekit_server, chat_path
) -> None:
    room = "replicas-edge-" + uuid.uuid4().hex[:8]
    ports = [free_port(), free_port()]
    settings = {
        "LIVEKIT_ROOM": room,
        "LIVESTAGE_OPERATOR_SECRET": SECRET,
        "TOKEN_RATE_TOKEN_PER_VISITOR": "3/minute",
        "TOKEN_RATE_CHAT": "3/minute",
    }
    edges = await asyncio.gather(
        *(
            asyncio.to_thread(
                _start_edge,
                edge_env(port, nats_server, redis_server, livekit_server, **settings),
            )
            for port in ports
        )
    )
    a = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=30)
    b = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", timeout=30)
    try:
        # --- a visitor: its cookie from A is the same visitor on B; the token limit is shared.
        first = await a.post("/api/livekit-token", json={"displayName": "Ada", "avatar": "fox"})
        assert first.status_code == 200, first.text
        visitor = {"Cookie": f"{VISITOR_COOKIE}={first.cookies[VISITOR_COOKIE]}"}
        second = await b.post(
            "/api/livekit-token", json={"displayName": "Ada", "avatar": "fox"}, headers=visitor
        )
        assert second.status_code == 200, second.text
        assert second.json()["identity"].split("_")[1] == first.json()["identity"].split("_")[1]
        third = await a.post(
            "/api/livekit-token", json={"displayName": "Ada", "avatar": "fox"}, headers=visitor
        )
        assert third.status_code == 200, third.text
        refused = await b.post(
            "/api/livekit-token", json={"displayName": "Ada", "avatar": "fox"}, headers=visitor
        )
        assert refused.status_code == 429, refused.text  # 3/minute spent over A and B together

        # --- chat: a token minted by A posts through B; every viewer gets it once.
        token = first.json()["token"]
        async with ChatViewer.joined(livekit_server, room, token=token) as viewer:
            auth = {"Authorization": f"Bearer {token}"}
            posted = await b.post("/api/chat", json={"body": "hello from B"}, headers=auth)
            assert posted.status_code == 202, posted.text
            message_id = posted.json()["id"]
            message = await viewer.wait_for_message(message_id, within=20)
            assert message.body == "hello from B"
            # Two more through A spend the visitor's chat limit (3/minute) on B as well.
            for body in ("one from A", "two from A"):
                more = await a.post("/api/chat", json={"body": body}, headers=auth)
                assert more.status_code == 202, more.text
            last = more.json()["id"]
            over = await b.post("/api/chat", json={"body": "one too many"}, headers=auth)
            assert over.status_code == 429, over.text
            assert "Retry-After" in over.headers
            await viewer.wait_for_message(last, within=20)
            assert viewer.message_ids().count(message_id) == 1  # shown once

        # --- the console: signed in on A, good on B; signed out on B, gone on A.
        signed_in = await a.post(
            "/api/operator/session", json={"secret": SECRET}, headers=OPERATOR_HEADER
        )
        assert signed_in.status_code == 204, signed_in.text
        session = {"Cookie": f"{SESSION_COOKIE}={signed_in.cookies[SESSION_COOKIE]}"}
        on_b = await b.get("/api/operator/session", headers=session)
        assert on_b.status_code == 200, on_b.text
        assert on_b.json()["expiresAt"] > 0
        signed_out = await b.delete("/api/operator/session", headers={**session, **OPERATOR_HEADER})
        assert signed_out.status_code == 204, signed_out.text
        on_a = await a.get("/api/operator/session", headers=session)
        assert on_a.status_code == 401, on_a.text
    finally:
        await a.aclose()
        await b.aclose()
        for edge in edges:
            output = await asyncio.to_thread(end_service, edge)
            print(f"----- edge output -----\n{output[-4000:]}")


async def _status_until(post: Callable[[], Awaitable[httpx.Response]], code: int) -> None:
    """POST until the answer is `code` (10 s at most, a tenth of a second apart)."""
    async with asyncio.timeout(10):
        while (response := await post()).status_code != code:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
    assert response.status_code == code, response.text


async def test_a_show_deleted_through_one_edge_is_refused_by_the_other_at_once(  # type: ignore[no-untyped-def]
    nats_server, redis_server, livekit_server
) -> None:
    show = "replicas-show-" + uuid.uuid4().hex[:8]
    settings = {
        "LIVEKIT_ROOM": "replicas-edge-" + uuid.uuid4().hex[:8],
        "LIVESTAGE_OPERATOR_SECRET": SECRET,
        # each edge would believe in a show it found for ten minutes: only the event tells it
        "TOKEN_SHOW_CACHE_S": "600",
    }
    operator = {"Authorization": f"Bearer {SECRET}"}
    async with running_edges(nats_server, redis_server, livekit_server, 2, **settings) as edges:
        a = httpx.AsyncClient(base_url=edges[0].url, timeout=30)
        b = httpx.AsyncClient(base_url=edges[1].url, timeout=30)
        deleted = False
        try:
            created = await a.post(
                "/api/operator/shows", json={"room": show, "title": "Quiz"}, headers=operator
            )
            assert created.status_code == 201, created.text
            minted = await b.post("/api/livekit-token", json=PROFILE | {"show": show})
            assert minted.status_code == 200, minted.text
            auth = {"Authorization": f"Bearer {minted.json()['token']}"}

            async def chat_on_b() -> httpx.Response:
                return await b.post("/api/chat", json={"body": "still on?"}, headers=auth)

            await _status_until(chat_on_b, 202)  # B has found the show and keeps believing it
            gone = await a.delete(f"/api/operator/shows/{show}", headers=operator)
            assert gone.status_code == 204, gone.text
            deleted = True
            await _status_until(chat_on_b, 401)  # within seconds, not TOKEN_SHOW_CACHE_S
            refused = await chat_on_b()
            assert refused.status_code == 401 and show in refused.json()["detail"]
            again = await b.post("/api/livekit-token", json=PROFILE | {"show": show})
            assert again.status_code == 404, again.text
        finally:
            if not deleted:
                await a.delete(f"/api/operator/shows/{show}", headers=operator)
            await a.aclose()
            await b.aclose()
