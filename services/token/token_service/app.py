"""Wiring of the edge: settings, connections, routers, error handlers, pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from livestage.kv import connect_redis
from livestage.settings import (
    AnamSettings,
    LiveKitSettings,
    NatsSettings,
    OperatorSettings,
    RedisSettings,
    TopicSettings,
)

from . import (
    errors,
    operator,
    routes_chat,
    routes_media,
    routes_operator_stage,
    routes_ops,
    routes_viewer,
)
from .client_ip import parse_networks
from .deps import Limits, Services
from .dispatch import DispatchMetadata
from .pages import SecurityHeaders, mount_pages
from .ratelimit import RateLimiter
from .settings import EdgeSettings


def create_app(
    edge: EdgeSettings | None = None,
    livekit: LiveKitSettings | None = None,
    nats: NatsSettings | None = None,
    redis: RedisSettings | None = None,
    topics: TopicSettings | None = None,
    operator_settings: OperatorSettings | None = None,
) -> FastAPI:
    edge = edge or EdgeSettings()
    livekit = livekit or LiveKitSettings()
    nats = nats or NatsSettings()
    redis = redis or RedisSettings()
    topics = topics or TopicSettings()
    operator_settings = operator_settings or OperatorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services(
            edge=edge,
            livekit=livekit,
            nats=nats,
            topics=topics,
            redis=connect_redis(redis),
            limiter=RateLimiter(redis.url),
            limits=Limits.from_settings(edge),
            trusted_proxies=parse_networks(edge.trusted_proxies),
            dispatch_metadata=DispatchMetadata(
                app=edge.app_name, avatar_model=AnamSettings().avatar_model, mode=edge.mode
            ),
            operator=operator_settings,
        )
        services.start_bus()
        app.state.services = services
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="Livestage edge",
        version="0.1.0",
        summary="Everything a browser touches: viewer tokens, chat, history, webhooks, pages.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    app.include_router(routes_viewer.router)
    app.include_router(routes_chat.router)
    app.include_router(routes_ops.router)
    app.include_router(operator.router)
    app.include_router(routes_operator_stage.router)
    app.include_router(routes_media.router)
    mount_pages(app, edge.web_dist)
    return app


def server_config(app: FastAPI, edge: EdgeSettings, log_level: str = "info") -> uvicorn.Config:
    """How uvicorn serves the edge. Its own proxy-header handling is off: uvicorn would trust
    X-Forwarded-For from 127.0.0.1 by default, and client addresses must come from
    TOKEN_TRUSTED_PROXIES only (see client_ip.py)."""
    return uvicorn.Config(
        app,
        host=edge.host,
        port=edge.port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
    )
