"""A real edge (uvicorn on a free port) wired to the real NATS, Redis and LiveKit fixtures."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from livestage.settings import LiveKitSettings, NatsSettings, OperatorSettings, RedisSettings
from token_service.app import create_app, server_config
from token_service.settings import EdgeSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Edge:
    base_url: str
    room: str
    livekit: LiveKitSettings
    client: httpx.AsyncClient
    server: uvicorn.Server

    async def token(self, name: str = "Ada", avatar: str = "fox", **extra: Any) -> dict[str, Any]:
        visitor = extra.pop("visitorId", "v" + uuid.uuid4().hex[:15])
        response = await self.client.post(
            "/api/livekit-token",
            json={"displayName": name, "avatar": avatar, "visitorId": visitor, **extra},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for_bus(self) -> None:
        services = self.server.config.app.state.services  # type: ignore[attr-defined]
        async with asyncio.timeout(10):
            while services.bus is None:  # noqa: ASYNC110 - the edge connects in the background
                await asyncio.sleep(0.05)


EdgeFactory = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def make_edge(nats_server, redis_server, livekit_server) -> AsyncIterator[EdgeFactory]:  # type: ignore[no-untyped-def]
    """Start edges on free ports; each gets its own room unless `room=` is given."""
    started: list[Edge] = []

    async def start(
        *,
        room: str | None = None,
        nats_url: str | None = None,
        redis_url: str | None = None,
        livekit: Any = None,
        operator_secret: str | None = None,
        **edge_settings: Any,
    ) -> Edge:
        """`nats_url`, `redis_url` and `livekit` (a LiveKitServer) default to the session's;
        `operator_secret` turns the operator routes on."""
        room = room or "room-" + uuid.uuid4().hex[:10]
        port = free_port()
        livekit_target = livekit or livekit_server
        livekit = LiveKitSettings(
            url=livekit_target.url,
            api_key=livekit_target.api_key,
            api_secret=SecretStr(livekit_target.api_secret),
            room=room,
            agent_name="livestage-host-test",
        )
        edge_config = EdgeSettings(host="127.0.0.1", port=port, **edge_settings)
        app = create_app(
            edge=edge_config,
            livekit=livekit,
            nats=NatsSettings(url=nats_url or nats_server.url, max_reconnect_attempts=-1),
            redis=RedisSettings(url=redis_url or redis_server.url),
            operator_settings=OperatorSettings(
                operator_secret=SecretStr(operator_secret) if operator_secret else None
            ),
        )
        server = uvicorn.Server(server_config(app, edge_config, log_level="warning"))
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        base_url = f"http://127.0.0.1:{port}"
        edge = Edge(
            base_url, room, livekit, httpx.AsyncClient(base_url=base_url, timeout=30), server
        )
        edge._task = task  # type: ignore[attr-defined]
        started.append(edge)
        return edge

    yield start
    for edge in started:
        await edge.client.aclose()
        edge.server.should_exit = True
        await asyncio.wait_for(edge._task, timeout=10)  # type: ignore[attr-defined]
