"""The edge with a dependency down (issue #17): LiveKit stopping must not take the page, chat or
chat history down, nor the edge out of readiness; the detailed status says what is down, and
asking it often costs LiveKit nothing more. Real NATS, Redis and livekit-server; chat history
is answered by chat-history's own responder over the real request/reply subject."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest
from redis.asyncio import Redis

from chat_history.app import ChatHistory, HistoryResponder
from chat_history.room import RoomGateway
from chat_history.settings import HistorySettings
from chat_history.store import HistoryStore, Limits
from livestage import subjects
from livestage.schemas import ChatMessage, now_ms
from livestage.settings import LiveKitSettings
from tests.support.edge import RunningEdge, running_edge
from tests.support.tcp_double import TcpDouble
from tests.support.waiting import until

PROFILE = {"displayName": "Ada", "avatar": "fox"}
OPERATOR_SECRET = "degraded-test-operator-secret-0123456789"


def state_of(edge: RunningEdge, dependency: str) -> str | None:
    latest = edge.services.status.latest.get(dependency)
    return latest.state if latest is not None else None


@pytest.fixture
async def history_responder(nats_server, redis_server) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """chat-history's responder, started for a room by calling the fixture's value."""
    redis = Redis.from_url(redis_server.url)
    nc = await nats.connect(nats_server.url)
    store = HistoryStore(redis, Limits(max_messages=100, max_age_s=3600))
    responders: list[HistoryResponder] = []

    async def serve(room: str, messages: list[ChatMessage]) -> None:
        for message in messages:
            await store.store(message)
        settings = HistorySettings()
        rooms = RoomGateway(LiveKitSettings(room=room), "chat", settings.send_timeout_s)
        responder = HistoryResponder(ChatHistory(store, rooms, settings), limit=4)
        responders.append(responder)
        await nc.subscribe(subjects.history_recent(room), cb=responder.handle)

    yield serve
    for responder in responders:
        await responder.aclose(timeout_s=2)
    await nc.close()
    await redis.aclose()


async def test_livekit_down_leaves_the_page_chat_and_history_up(  # type: ignore[no-untyped-def]
    tmp_path: Path, nats_server, redis_server, fresh_livekit, history_responder
) -> None:
    livekit = fresh_livekit()
    (tmp_path / "index.html").write_text("<!doctype html><title>Livestage</title>")
    async with (
        asyncio.timeout(90),
        running_edge(
            nats_server,
            redis_server,
            livekit,
            web_dist=tmp_path,
            status_interval_s=0.2,
            host_cache_ttl_s=0.001,  # ask LiveKit about the host on every token
            operator_secret=OPERATOR_SECRET,
        ) as edge,
        httpx.AsyncClient(base_url=edge.url, trust_env=False, timeout=15) as client,
    ):
        earlier = ChatMessage(
            id="earlier1",
            room=edge.room,
            author_identity="viewer_aaaaaaaa_00000000",
            author_name="Ann",
            avatar="fox",
            body="said before LiveKit went away",
            kind="viewer",
            created_at=now_ms(),
        )
        await history_responder(edge.room, [earlier])  # type: ignore[operator]
        await until(lambda: edge.services.bus is not None, 15, "the edge to reach NATS")
        assert (await client.get("/readyz")).status_code == 200
        await until(lambda: state_of(edge, "livekit") == "ok", 15, "LiveKit checked ok")
        token = await client.post("/api/livekit-token", json=PROFILE)
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['token']}"}

        livekit.stop()
        await until(lambda: state_of(edge, "livekit") == "down", 15, "LiveKit checked down")

        page = await client.get("/")
        assert page.status_code == 200 and "Livestage" in page.text
        history = await client.get("/api/chat/history", headers=auth)
        assert history.status_code == 200, history.text
        assert [m["id"] for m in history.json()["messages"]] == ["earlier1"]
        sent = await client.post("/api/chat", json={"body": "still here?"}, headers=auth)
        assert sent.status_code == 202, sent.text
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text

        status = await client.get("/statusz")
        assert status.status_code == 200
        body = status.json()
        assert body["status"] == "degraded"
        assert body["dependencies"]["livekit"] == {
            "state": "down",
            "neededBy": ["tokens", "host dispatch"],
        }
        assert body["dependencies"]["nats"]["state"] == "ok"
        assert body["dependencies"]["redis"]["state"] == "ok"
        assert "detail" not in body["dependencies"]["livekit"]  # details are the operator's
        detailed = await client.get(
            "/api/operator/status", headers={"Authorization": f"Bearer {OPERATOR_SECRET}"}
        )
        assert detailed.status_code == 200, detailed.text
        assert "LiveKit" in detailed.json()["dependencies"]["livekit"]["detail"]
        assert (await client.get("/api/operator/status")).status_code == 401

        # a new viewer is told clearly that joining waits for LiveKit
        refused = await client.post("/api/livekit-token", json=PROFILE)
        assert refused.status_code == 503, refused.text
        assert "LiveKit" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1

        livekit.restart()
        await until(lambda: state_of(edge, "livekit") == "ok", 30, "LiveKit checked ok again")
        assert (await client.post("/api/livekit-token", json=PROFILE)).status_code == 200


async def test_the_status_asked_100_times_costs_livekit_one_call_per_interval(  # type: ignore[no-untyped-def]
    nats_server, redis_server, livekit_server
) -> None:
    async with (
        asyncio.timeout(60),
        TcpDouble(target=("127.0.0.1", livekit_server.port)) as counting,
        running_edge(
            nats_server,
            redis_server,
            livekit_server,
            livekit_api_url=counting.url,
            trusted_proxies=["127.0.0.1/32"],
            status_interval_s=60,
        ) as edge,
        httpx.AsyncClient(base_url=edge.url, trust_env=False, timeout=15) as client,
    ):
        # 100 requests at once, from 100 addresses (no rate limit stops any of them)
        answers = await asyncio.gather(
            *(
                client.get("/statusz", headers={"X-Forwarded-For": f"10.3.{n}.1"})
                for n in range(100)
            )
        )
        assert [a.status_code for a in answers] == [200] * 100
        assert {a.json()["dependencies"]["livekit"]["state"] for a in answers} == {"ok"}
        calls = [line for line in counting.requests if b"ListRooms" in line]
        print(f"LiveKit calls for 100 status requests: {len(calls)}")
        assert 1 <= len(calls) <= 2, calls

        # one address asking too often is told when to come back (TOKEN_RATE_STATUS_PER_NETWORK)
        codes = [
            (await client.get("/statusz", headers={"X-Forwarded-For": "10.4.0.1"})).status_code
            for _ in range(31)
        ]
        assert codes[:30] == [200] * 30 and codes[30] == 429
