"""Wiring of the edge: settings, connections, routers, error handlers, pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from opentelemetry.metrics import Counter

from livestage.keys import derived_key
from livestage.kv import connect_redis
from livestage.settings import (
    AnamSettings,
    LiveKitSettings,
    NatsSettings,
    OperatorSettings,
    RedisSettings,
    StageDomainSettings,
    TopicSettings,
)

from . import errors
from .body_limit import BodyLimit
from .client_ip import parse_networks
from .deps import Limits, Services
from .dispatch.decision import HostPolicy
from .dispatch.dispatcher import DispatchMetadata, HostCache, WorkerRegistrations
from .dispatch.reconciler import HostReconciler
from .dispatch.schedule import ReconcilePolicy
from .livekit_gateway import LiveKitGateway
from .names import NameCheck
from .pages import SecurityHeaders, mount_docs, mount_pages, page_policy
from .ratelimit import RateLimiter
from .routes import ROUTERS
from .settings import EdgeSettings
from .visitors import VisitorIds

WEBHOOK_PATH = "/api/livekit/webhook"


def create_app(
    edge: EdgeSettings | None = None,
    livekit: LiveKitSettings | None = None,
    nats: NatsSettings | None = None,
    redis: RedisSettings | None = None,
    topics: TopicSettings | None = None,
    operator_settings: OperatorSettings | None = None,
    rate_limited_counter: Counter | None = None,
    stage_domains: StageDomainSettings | None = None,
) -> FastAPI:
    """The edge app; `rate_limited_counter` lets tests read the 429 metric."""
    edge = edge or EdgeSettings()
    livekit = livekit or LiveKitSettings()
    nats = nats or NatsSettings()
    redis = redis or RedisSettings()
    topics = topics or TopicSettings()
    operator_settings = operator_settings or OperatorSettings()
    # STAGE_*: the operator's capture URLs are checked against the stage producer's own rules
    stage_domains = stage_domains or StageDomainSettings()
    # TOKEN_VISITOR_KEY, or a key derived from LIVEKIT_API_SECRET: replicas agree either way.
    visitors = VisitorIds(derived_key("visitor", edge.visitor_key))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis_client = connect_redis(
            redis,
            timeout_s=edge.redis_timeout_s,
            connect_timeout_s=edge.redis_timeout_s,
            retries=1,
            max_connections=edge.redis_max_connections,
        )
        secret = livekit.api_secret.get_secret_value()
        gateway = LiveKitGateway(
            livekit.http_url, livekit.api_key, secret, timeout_s=edge.livekit_timeout_s
        )
        host_cache = HostCache(redis_client, livekit.room, edge.host_cache_ttl_s)
        host_policy = HostPolicy(
            agent_name=livekit.agent_name,
            stale_after_ms=int(edge.dispatch_stale_s * 1000),
            join_grace_ms=int(edge.host_join_grace_s * 1000),
            worker_grace_ms=int(edge.dispatch_worker_grace_s * 1000),
        )
        dispatch_metadata = DispatchMetadata(
            app=edge.app_name, avatar_model=AnamSettings().avatar_model, mode=edge.mode
        )
        workers = WorkerRegistrations(redis_client, livekit.agent_name)
        services = Services(
            edge=edge,
            livekit=livekit,
            nats=nats,
            topics=topics,
            redis=redis_client,
            limiter=RateLimiter(
                redis.url, redis_client, livekit.room, limited=rate_limited_counter
            ),
            limits=Limits.from_settings(edge),
            trusted_proxies=parse_networks(edge.trusted_proxies),
            dispatch_metadata=dispatch_metadata,
            gateway=gateway,
            host_cache=host_cache,
            host_policy=host_policy,
            workers=workers,
            reconciler=HostReconciler(
                gateway=gateway,
                caches={livekit.room: host_cache},
                workers=workers,
                policy=host_policy,
                metadata=dispatch_metadata,
                lock_s=edge.dispatch_lock_s,
                schedule=ReconcilePolicy(
                    interval_s=edge.reconcile_interval_s,
                    worker_grace_s=edge.dispatch_worker_grace_s,
                    max_backoff_s=edge.reconcile_backoff_max_s,
                ),
            ),
            visitors=visitors,
            # in a thread: the first build loads word lists and the classifier
            names=await asyncio.to_thread(NameCheck.build, edge.reserved_names),
            operator=operator_settings,
            stage_domains=stage_domains,
        )
        services.start_bus()
        services.start_reconciler()
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
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(SecurityHeaders, page_csp=page_policy(livekit.url))
    # Outermost: an oversized body is refused before routing, auth, limits or verification.
    app.add_middleware(
        BodyLimit,
        cap_for_path=lambda path: (
            edge.max_webhook_body_bytes if path == WEBHOOK_PATH else edge.max_json_body_bytes
        ),
    )
    for router in ROUTERS:
        app.include_router(router)
    mount_docs(app)
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
