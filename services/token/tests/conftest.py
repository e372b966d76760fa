"""A real edge (uvicorn on a free port) wired to the real NATS, Redis and LiveKit fixtures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from livestage.settings import (
    LiveKitSettings,
    NatsSettings,
    OperatorSettings,
    RedisSettings,
    StageDomainSettings,
)
from tests.support.services import free_port
from token_service.app import create_app, server_config
from token_service.settings import EdgeSettings


@dataclass
class Edge:
    base_url: str
    room: str
    livekit: LiveKitSettings
    client: httpx.AsyncClient
    server: uvicorn.Server
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def token(
        self,
        name: str = "Ada",
        avatar: str = "fox",
        *,
        client: httpx.AsyncClient | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A token for the visitor behind `client` (its cookie jar), by default `self.client`:
        every call with the same client is the same visitor."""
        response = await (client or self.client).post(
            "/api/livekit-token", json={"displayName": name, "avatar": avatar, **extra}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def chat(self, token: str, body: str) -> str:
        """POST a chat message with a viewer token; the id of the accepted (202) message."""
        response = await self.client.post(
            "/api/chat", json={"body": body}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 202, response.text
        message_id: str = response.json()["id"]
        return message_id

    def visitor(self) -> httpx.AsyncClient:
        """A client with a cookie jar of its own: a new visitor from the same address."""
        client = httpx.AsyncClient(base_url=self.base_url, timeout=30)
        self._clients.append(client)
        return client

    @property
    def services(self) -> Any:
        return self.server.config.app.state.services  # type: ignore[attr-defined]

    async def wait_for_bus(self) -> None:
        services = self.services
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
        livekit_api_url: str = "",
        operator_secret: str | None = None,
        rate_limited_counter: Any = None,
        stage_domains: StageDomainSettings | None = None,
        agent_name: str = "livestage-host-test",
        **edge_settings: Any,
    ) -> Edge:
        """`nats_url`, `redis_url` and `livekit` (a LiveKitServer) default to the session's;
        `livekit_api_url` sends the edge's server-API calls elsewhere (a double);
        `operator_secret` turns the operator routes on; `stage_domains` (STAGE_*) is what the
        edge checks an operator's capture URL against (default: the defaults, not the env);
        `agent_name` is the host worker the edge dispatches (a test's `running_worker`)."""
        room = room or "room-" + uuid.uuid4().hex[:10]
        port = free_port()
        livekit_target = livekit or livekit_server
        livekit = LiveKitSettings(
            url=livekit_target.url,
            api_key=livekit_target.api_key,
            api_secret=SecretStr(livekit_target.api_secret),
            api_url=livekit_api_url,
            room=room,
            agent_name=agent_name,
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
            **({"rate_limited_counter": rate_limited_counter} if rate_limited_counter else {}),
            stage_domains=stage_domains or StageDomainSettings.model_construct(),
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
        for client in edge._clients:
            await client.aclose()
        edge.server.should_exit = True
        await asyncio.wait_for(edge._task, timeout=10)  # type: ignore[attr-defined]
