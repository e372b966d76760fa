"""What the routes share (connections, settings) and the FastAPI dependencies over it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from livekit import api
from redis.asyncio import Redis

from livestage.bus import Bus, BusUnavailable
from livestage.settings import LiveKitSettings, NatsSettings, OperatorSettings, TopicSettings

from .client_ip import Network, client_ip
from .dispatch import DispatchMetadata
from .ratelimit import Limit, RateLimiter
from .settings import EdgeSettings
from .viewers import Viewer, ViewerAuthError, verify_viewer_token

log = logging.getLogger(__name__)


@dataclass
class Limits:
    token_per_ip: Limit
    token_per_visitor: Limit
    chat: Limit
    history: Limit

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> Limits:
        return cls(
            token_per_ip=Limit.parse("token-ip", settings.rate_token_per_ip),
            token_per_visitor=Limit.parse("token-visitor", settings.rate_token_per_visitor),
            chat=Limit.parse("chat", settings.rate_chat),
            history=Limit.parse("history", settings.rate_history),
        )


@dataclass
class Services:
    """Everything the edge holds open while it runs."""

    edge: EdgeSettings
    livekit: LiveKitSettings
    nats: NatsSettings
    topics: TopicSettings
    redis: Redis
    limiter: RateLimiter
    limits: Limits
    trusted_proxies: list[Network]
    dispatch_metadata: DispatchMetadata
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    lkapi: api.LiveKitAPI | None = None
    bus: Bus | None = None
    _bus_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def api_secret(self) -> str:
        return self.livekit.api_secret.get_secret_value()

    def start_bus(self) -> None:
        """Connect to NATS in the background, retrying until it answers."""
        self._bus_task = asyncio.create_task(self._connect_bus())

    async def _connect_bus(self) -> None:
        while True:
            try:
                bus = await Bus.connect(self.nats, "edge")
                await bus.ensure_streams()
            except Exception as error:  # noqa: BLE001 - whatever it is, keep retrying
                log.warning("NATS not ready (%s); retrying in 2 s", error)
                await asyncio.sleep(2)
                continue
            self.bus = bus
            log.info("edge connected to NATS at %s", self.nats.url)
            return

    async def close(self) -> None:
        if self._bus_task is not None:
            self._bus_task.cancel()
        if self.bus is not None:
            await self.bus.close()
        if self.lkapi is not None:
            await self.lkapi.aclose()
        await self.redis.aclose()

    def require_bus(self) -> Bus:
        if self.bus is None or not self.bus.connected:
            raise BusUnavailable("not connected to NATS")
        return self.bus

    def require_lkapi(self) -> api.LiveKitAPI:
        if self.lkapi is None:
            self.lkapi = api.LiveKitAPI(
                self.livekit.http_url, self.livekit.api_key, self.api_secret
            )
        return self.lkapi


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_client_ip(request: Request, services: ServicesDep) -> str:
    peer = request.client.host if request.client else "unknown"
    return client_ip(peer, request.headers.get("x-forwarded-for"), services.trusted_proxies)


ClientIp = Annotated[str, Depends(get_client_ip)]


def get_viewer(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description="Bearer <viewer token>")] = None,
) -> Viewer:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing 'Authorization: Bearer <viewer token>' header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return verify_viewer_token(
            authorization[7:].strip(),
            api_key=services.livekit.api_key,
            api_secret=services.api_secret,
            room=services.livekit.room,
        )
    except ViewerAuthError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(error), headers={"WWW-Authenticate": "Bearer"}
        ) from error


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def limit_chat(viewer: ViewerDep, services: ServicesDep) -> None:
    await services.limiter.check(services.limits.chat, viewer.identity)


async def limit_history(viewer: ViewerDep, services: ServicesDep) -> None:
    await services.limiter.check(services.limits.history, viewer.identity)


async def limit_token_ip(ip: ClientIp, services: ServicesDep) -> None:
    await services.limiter.check(services.limits.token_per_ip, ip)
