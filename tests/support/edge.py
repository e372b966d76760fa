"""A real edge app served by uvicorn in the test's event loop, for cross-service tests.

    async with running_edge(nats_server, redis_server, livekit_server, stage_media_url=...) as edge:
        edge.url, edge.services, edge.server    # base URL, the app's Services, the uvicorn server

Keyword arguments are `EdgeSettings` fields; `livekit_api_url` sends the server-API calls
elsewhere (a TcpDouble); `media_refused_counter` is passed to `create_app`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from pydantic import SecretStr

from livestage.settings import LiveKitSettings, NatsSettings, OperatorSettings, RedisSettings
from tests.support.services import free_port
from token_service.app import create_app, server_config
from token_service.settings import EdgeSettings


@dataclass
class RunningEdge:
    url: str
    room: str
    server: uvicorn.Server

    @property
    def services(self) -> Any:
        return self.server.config.app.state.services  # type: ignore[attr-defined]


@asynccontextmanager
async def running_edge(  # type: ignore[no-untyped-def]
    nats_server,
    redis_server,
    livekit_server,
    *,
    livekit_api_url: str = "",
    operator_secret: str | None = None,
    media_refused_counter: Any = None,
    **edge_settings: Any,
) -> AsyncIterator[RunningEdge]:
    port = free_port()
    room = "room-" + uuid.uuid4().hex[:8]
    edge = EdgeSettings(host="127.0.0.1", port=port, **edge_settings)
    app = create_app(
        edge=edge,
        livekit=LiveKitSettings(
            url=livekit_server.url,
            api_url=livekit_api_url,
            api_key=livekit_server.api_key,
            api_secret=SecretStr(livekit_server.api_secret),
            room=room,
        ),
        nats=NatsSettings(url=nats_server.url),
        redis=RedisSettings(url=redis_server.url),
        operator_settings=OperatorSettings(
            operator_secret=SecretStr(operator_secret) if operator_secret else None
        ),
        media_refused_counter=media_refused_counter,
    )
    server = uvicorn.Server(server_config(app, edge, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(15):
            while not server.started:  # noqa: ASYNC110 - uvicorn has no started event
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield RunningEdge(f"http://127.0.0.1:{port}", room, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
