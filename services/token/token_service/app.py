"""Wiring of the edge: settings, connections, routers, error handlers, pages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from livekit import api
from opentelemetry.metrics import Counter
from starlette.types import Receive, Scope, Send
from uvicorn.supervisors import Multiprocess

from livestage import metrics
from livestage.keys import derived_key
from livestage.kv import connect_redis
from livestage.settings import (
    AnamSettings,
    LiveKitSettings,
    MemorySettings,
    NatsSettings,
    OperatorSettings,
    RedisSettings,
    StageDomainSettings,
    TopicSettings,
)
from livestage.shows import ShowStore
from livestage.telemetry import exporting, fastapi_telemetry

from . import errors
from .body_limit import BodyLimit
from .chat_ingress import ChatIngress
from .client_ip import parse_networks
from .console.feed import ConsoleFeed
from .console.feeds import ConsoleFeeds
from .deps import Limits, Services
from .dispatch.decision import HostPolicy
from .dispatch.dispatcher import DispatchMetadata, HostCache, WorkerRegistrations
from .dispatch.reconciler import HostReconciler
from .dispatch.schedule import ReconcilePolicy
from .egress import Egresses, EgressRecords
from .livekit_gateway import LiveKitGateway
from .media_guard import ABORT_EXTENSION, MediaGuard
from .names import NameCheck
from .pages import SecurityHeaders, mount_docs, mount_pages, page_policy
from .ratelimit import RateLimiter
from .routes import ROUTERS
from .settings import EdgeSettings
from .status import Dependency, StatusBoard
from .viewers import ViewerTokens
from .visitors import VisitorIds

WEBHOOK_PATH = "/api/livekit/webhook"


class EdgeApp(FastAPI):
    """FastAPI, plus a way for a response to drop its connection at once (`ABORT_EXTENSION`).

    ASGI can only close a connection by raising, and the server then closes it gracefully:
    whatever is buffered for a reader that takes nothing stays until it reads. uvicorn's `send`
    is a method of the connection's request cycle, which holds the transport; its `abort()` is
    offered in the scope. Under another server the extension is missing and a stalled response
    raises instead."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        abort = getattr(transport, "abort", None)
        if scope["type"] == "http" and callable(abort):
            scope["extensions"] = {**(scope.get("extensions") or {}), ABORT_EXTENSION: abort}
        await super().__call__(scope, receive, send)


def dependencies(services: Services) -> list[Dependency]:
    """What /statusz checks, each with what the edge cannot do without it."""
    edge = services.edge

    async def nats() -> str | None:
        bus = services.bus
        if bus is None or not bus.connected:
            raise ConnectionError("not connected to NATS")
        try:
            await bus.js.account_info()
        except Exception as error:  # noqa: BLE001 - connected, but JetStream did not answer
            return f"connected, JetStream not answering ({type(error).__name__})"
        return None

    async def redis() -> str | None:
        await services.redis.ping()
        return None

    async def livekit() -> str | None:
        await services.gateway.call(
            "list_rooms", lambda lk: lk.room.list_rooms(api.ListRoomsRequest())
        )
        return None

    async def stage_media() -> str | None:
        url = f"{edge.stage_media_url.rstrip('/')}/healthz"
        response = await services.media_client.get(url)
        return None if response.status_code == 200 else f"HTTP {response.status_code}"

    return [
        Dependency("nats", nats, edge.nats_timeout_s, ("chat", "chat history", "webhooks")),
        Dependency(
            "redis", redis, edge.redis_timeout_s, ("tokens", "chat", "chat history", "bans")
        ),
        Dependency("livekit", livekit, edge.livekit_timeout_s, ("tokens", "host dispatch")),
        Dependency("stage_media", stage_media, edge.livekit_timeout_s, ("visuals",)),
    ]


def create_app(
    edge: EdgeSettings | None = None,
    livekit: LiveKitSettings | None = None,
    nats: NatsSettings | None = None,
    redis: RedisSettings | None = None,
    topics: TopicSettings | None = None,
    operator_settings: OperatorSettings | None = None,
    rate_limited_counter: Counter | None = None,
    stage_domains: StageDomainSettings | None = None,
    memory: MemorySettings | None = None,
    media_refused_counter: Counter | None = None,
) -> FastAPI:
    """The edge app; `rate_limited_counter` and `media_refused_counter` let tests read those
    metrics."""
    edge = edge or EdgeSettings()
    livekit = livekit or LiveKitSettings()
    nats = nats or NatsSettings()
    redis = redis or RedisSettings()
    topics = topics or TopicSettings()
    operator_settings = operator_settings or OperatorSettings()
    # STAGE_*: the operator's capture URLs are checked against the stage producer's own rules
    stage_domains = stage_domains or StageDomainSettings()
    memory = memory or MemorySettings()  # MEMORY_*: the edge's "What the host remembers"
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
        media = MediaGuard.create(
            per_client=edge.media_streams_per_client,
            max_streams=edge.media_max_streams,
            max_reads=edge.media_max_reads,
            wait_s=edge.media_slot_wait_s,
        )
        gateway = LiveKitGateway(
            livekit.http_url, livekit.api_key, secret, timeout_s=edge.livekit_timeout_s
        )
        shows = ShowStore(redis_client, default_room=livekit.room)
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
            limiter=RateLimiter.in_redis(
                redis.url, redis_client, livekit.room, limited=rate_limited_counter
            ),
            limits=Limits.from_settings(edge),
            trusted_proxies=parse_networks(edge.trusted_proxies),
            dispatch_metadata=dispatch_metadata,
            gateway=gateway,
            host_policy=host_policy,
            workers=workers,
            reconciler=HostReconciler(
                gateway=gateway,
                rooms=shows.rooms,
                cache_for=lambda room: HostCache(redis_client, room, edge.host_cache_ttl_s),
                initial_rooms=[livekit.room],
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
            local_limiter=RateLimiter.in_memory(livekit.room, limited=rate_limited_counter),
            media=media,
            media_client=httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=2.0, read=30.0, write=10.0, pool=edge.media_slot_wait_s
                ),
                limits=httpx.Limits(
                    max_connections=media.upstream_connections,
                    max_keepalive_connections=media.reads.size,
                ),
                trust_env=False,  # never send the stage's assets through an environment proxy
                follow_redirects=False,
            ),
            media_refused=media_refused_counter or metrics.counter(metrics.MEDIA_REFUSED),
            console=ConsoleFeeds(
                default_room=livekit.room,
                make=lambda room: ConsoleFeed(
                    room=room,
                    redis=redis_client,
                    gateway=gateway,
                    max_streams=edge.console_streams,
                    queue_size=edge.console_queue,
                    numbers_s=edge.console_numbers_s,
                    backlog_s=edge.console_backlog_s,
                ),
                max_streams=edge.console_streams,
                max_rooms=edge.console_rooms,
            ),
            viewer_tokens=ViewerTokens(livekit.api_key, secret, cache_size=edge.verified_tokens),
            operator=operator_settings,
            stage_domains=stage_domains,
            memory=memory,
        )
        services.egress = Egresses(
            gateway=LiveKitGateway(
                edge.egress_api_url or livekit.http_url,
                livekit.api_key,
                secret,
                timeout_s=edge.egress_timeout_s,
            ),
            records=EgressRecords(redis_client),
            stage_url=edge.egress_stage_url,
            default_room=livekit.room,
        )
        metrics.gauge(metrics.EGRESSES_ACTIVE, services.egress.tracker.observe)
        services.status = StatusBoard(dependencies(services), edge.status_interval_s)
        services.start_bus()
        status_task = asyncio.create_task(services.status.run(), name="dependency status")
        metrics.gauge(metrics.EDGE_DEPENDENCY_STATUS, services.status.observe)
        services.start_reconciler()
        app.state.services = services
        try:
            yield
        finally:
            status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status_task
            await services.close()

    app = EdgeApp(
        title="Livestage edge",
        version="0.1.0",
        summary="Everything a browser touches: viewer tokens, chat, history, webhooks, pages.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # its own spans and HTTP metrics only when they are exported (OTEL_EXPORTER_OTLP_ENDPOINT)
        telemetry=fastapi_telemetry(),
    )
    errors.install(app)
    # Innermost of ours (inside the security headers): a chat POST skips the framework's work.
    # Not while telemetry exports: then every request gets FastAPI's server span and metrics.
    if not exporting():
        app.add_middleware(ChatIngress)
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
    mount_pages(app, edge.web_dist, livekit.url)
    return app


def server_config(
    app: FastAPI | str, edge: EdgeSettings, log_level: str = "info"
) -> uvicorn.Config:
    """How uvicorn serves the edge: `app`, or the import path of a factory that builds it in
    each of `TOKEN_WORKERS` processes. Its own proxy-header handling is off: uvicorn would trust
    X-Forwarded-For from 127.0.0.1 by default, and client addresses must come from
    TOKEN_TRUSTED_PROXIES only (see client_ip.py)."""
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=edge.host,
        port=edge.port,
        workers=edge.workers,
        log_level=log_level,
        access_log=edge.access_log,
        proxy_headers=False,
        server_header=False,
    )


def serve(app: FastAPI | str, edge: EdgeSettings) -> None:
    """Serve `app` until SIGTERM; with `TOKEN_WORKERS` > 1, `app` is the import path of a
    factory: uvicorn's supervisor binds the port once and runs the factory's app in that many
    worker processes (and replaces one that dies)."""
    config = server_config(app, edge)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
