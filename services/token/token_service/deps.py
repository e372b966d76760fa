"""What the routes share (connections, settings) and the FastAPI dependencies over it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import Depends, Header, HTTPException, Query, Request, status
from nats.aio.msg import Msg
from nats.js.api import PubAck
from opentelemetry import context as otel_context
from opentelemetry.metrics import Counter
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage import subjects
from livestage.bans import Ban, BanStore, Refusal
from livestage.bus import Bus, BusUnavailable, Observed, Watch, message_id_of
from livestage.memory import MemoryCaps, MemoryStore
from livestage.schemas import (
    ChatMessage,
    EgressEvent,
    HostJobEvent,
    HostWorkerEvent,
    ShowConfigEvent,
    WireModel,
    now_ms,
)
from livestage.settings import (
    LiveKitSettings,
    MemorySettings,
    NatsSettings,
    OperatorSettings,
    StageDomainSettings,
    TopicSettings,
    mask_url,
)
from livestage.shows import ShowCache, ShowStore
from livestage.subjects import ROOM_NAME_PATTERN
from livestage.telemetry import exporting

from .chat_admission import BAN_ENTRY, ChatAdmission
from .client_ip import ADDRESSES_REMEMBERED, Network, client_ip, client_network, forwarded_proto
from .console.feeds import ConsoleFeeds
from .dispatch.decision import HostPolicy
from .dispatch.dispatcher import DispatchMetadata, HostCache, HostState, WorkerRegistrations
from .dispatch.reconciler import HostReconciler
from .dispatch.schedule import Trigger
from .egress import Egresses
from .in_flight import InFlightBatch
from .livekit_gateway import LiveKitError, LiveKitGateway
from .media_guard import MediaGuard
from .names import NameCheck
from .ratelimit import Limit, RateLimiter
from .settings import EdgeSettings
from .status import StatusBoard
from .viewers import Viewer, ViewerAuthError, ViewerTokens
from .visitors import VisitorIds

log = logging.getLogger(__name__)

ChatPublish = tuple[str, ChatMessage, otel_context.Context]
"""A chat line to publish: its subject, the message, and the trace context its headers carry."""


@dataclass
class Limits:
    token_per_network: Limit
    token_per_visitor: Limit
    chat_per_visitor: Limit
    chat_per_network: Limit
    history_per_visitor: Limit
    history_per_network: Limit
    media_per_network: Limit
    status_per_network: Limit
    operator_sign_in: Limit

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> Limits:
        return cls(
            token_per_network=Limit.parse("token-network", settings.rate_token_per_ip),
            token_per_visitor=Limit.parse("token-visitor", settings.rate_token_per_visitor),
            chat_per_visitor=Limit.parse("chat-visitor", settings.rate_chat),
            chat_per_network=Limit.parse("chat-network", settings.rate_chat_per_network),
            history_per_visitor=Limit.parse("history-visitor", settings.rate_history),
            history_per_network=Limit.parse("history-network", settings.rate_history_per_network),
            media_per_network=Limit.parse("media-network", settings.rate_media_per_network),
            status_per_network=Limit.parse("status-network", settings.rate_status_per_network),
            operator_sign_in=Limit.parse("operator-sign-in", settings.rate_operator_sign_in),
        )


KnownShows = ShowCache
"""The edge's cache of the shows that exist (TOKEN_SHOW_CACHE_S), so a viewer token's room costs
no Redis call per chat POST: `exists(room, store)`, `forget(room)` where it is deleted. A room not
found is asked about again every time (a new show works at once). Every worker follows
`room.config.*`, so a show deleted through another worker or replica is refused at once; one whose
event it missed (NATS away) is believed in for up to the TTL."""


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
    gateway: LiveKitGateway
    host_policy: HostPolicy
    workers: WorkerRegistrations
    reconciler: HostReconciler
    visitors: VisitorIds
    names: NameCheck
    local_limiter: RateLimiter  # this replica's own buckets (media, status)
    media: MediaGuard
    media_client: httpx.AsyncClient
    media_refused: Counter
    console: ConsoleFeeds
    viewer_tokens: ViewerTokens
    status: StatusBoard = field(init=False)  # set by the app: its probes use these services
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    stage_domains: StageDomainSettings = field(default_factory=StageDomainSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)  # MEMORY_*
    egress: Egresses | None = None  # set by the app (LiveKit web egress of the stage page)
    known_shows: KnownShows = field(init=False)  # TOKEN_SHOW_CACHE_S (see __post_init__)
    bus: Bus | None = None
    started: bool = False  # NATS connected and Redis answered once (see /readyz)
    _bus_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _reconciler_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _shows_watch: Watch | None = field(default=None, repr=False)  # `room.config.*`

    def __post_init__(self) -> None:
        self.known_shows = KnownShows(self.edge.show_cache_s)

    @property
    def api_secret(self) -> str:
        return self.livekit.api_secret.get_secret_value()

    @functools.cached_property
    def bans(self) -> BanStore:
        return BanStore(self.redis)

    async def publish_chat(self, subject: str, message: ChatMessage) -> PubAck:
        """Store a chat line in JetStream; the lines posted while a publish is in flight go
        together, their confirmations awaited together (`Bus.publish_many`): each POST still
        answers only once its own line is stored. While telemetry exports, each goes alone
        (`Bus.publish`), with its producer span."""
        if exporting():
            return await self.require_bus().publish(
                subject, message, timeout_s=self.edge.nats_timeout_s
            )
        return await self.chat_publishes((subject, message, otel_context.get_current()))

    @functools.cached_property
    def chat_publishes(self) -> InFlightBatch[ChatPublish, PubAck]:
        async def send(items: list[ChatPublish]) -> list[PubAck | BaseException]:
            return list(
                await self.require_bus().publish_many(
                    [
                        (subject, model, f"{subject}:{message_id_of(model)}")  # as `Bus.publish`
                        for subject, model, _ in items
                    ],
                    timeout_s=self.edge.nats_timeout_s,
                    contexts=[context for _, _, context in items],
                )
            )

        return InFlightBatch(send, "chat publish batch")

    @functools.cached_property
    def network_of(self) -> Callable[[str, str | None], str]:
        """The network (`client_network`) of a request from socket peer `peer` with this
        X-Forwarded-For (None: none), remembered for the last `ADDRESSES_REMEMBERED` pairs: a
        chat POST parses no address again (TOKEN_TRUSTED_PROXIES is fixed while the edge runs)."""
        trusted = self.trusted_proxies

        @functools.lru_cache(maxsize=ADDRESSES_REMEMBERED)
        def network_of(peer: str, forwarded_for: str | None) -> str:
            return client_network(client_ip(peer, forwarded_for, trusted))

        return network_of

    @functools.cached_property
    def chat_admission(self) -> ChatAdmission:
        """A chat POST's bans and limits in one round trip (`chat_admission.py`)."""
        return ChatAdmission(self.redis, self.limiter, self.edge.visitor_network_ttl_s)

    @property
    def memories(self) -> MemoryStore:
        """Viewers' memory cards (MEMORY_RETENTION_DAYS, MEMORY_MAX_FACTS, MEMORY_MAX_BYTES)."""
        caps = MemoryCaps(facts=self.memory.max_facts, max_bytes=self.memory.max_bytes)
        return MemoryStore(self.redis, self.memory.retention_days, caps)

    @property
    def shows(self) -> ShowStore:
        """Every show; the default (LIVEKIT_ROOM) exists without a record."""
        return ShowStore(self.redis, default_room=self.livekit.room)

    def host_cache_for(self, room: str) -> HostCache:
        """The room's cached host state (a few Redis keys; cheap to make per request)."""
        return HostCache(self.redis, room, self.edge.host_cache_ttl_s)

    async def require_show(self, room: str) -> str:
        """`room` if a show has that name, else 404 (the name matched the room pattern before
        it got here, so it may be said back)."""
        if not await self.shows.exists(room):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no show named {room!r}")
        return room

    def start_reconciler(self) -> None:
        """Look after the room's host in the background (`dispatch/reconciler.py`)."""
        self._reconciler_task = asyncio.create_task(self.reconciler.run())

    def start_bus(self) -> None:
        """Connect to NATS in the background, retrying until it answers."""
        self._bus_task = asyncio.create_task(self._connect_bus())

    async def _connect_bus(self) -> None:
        while True:
            try:
                bus = await Bus.connect(self.nats, "edge")
                await bus.ensure_streams()
                # Host job events keep the host-state cache honest (see dispatch/dispatcher.py).
                # A plain subscription: JetStream keeps them for others, the edge needs only live
                # ones.
                await bus.nc.subscribe(subjects.all_rooms("host", "job"), cb=self._on_host_job)
                await bus.nc.subscribe(
                    subjects.host_worker(self.livekit.agent_name), cb=self._on_host_worker
                )
                # every replica's egress gauge follows the webhooks any replica received
                await bus.nc.subscribe(subjects.all_rooms("room", "egress"), cb=self._on_egress)
                # a show created, changed or deleted through any replica applies here at once
                # (from a time: "new" can skip); TOKEN_SHOW_CACHE_S is the net for a missed one
                self._shows_watch = await bus.watch(
                    subjects.all_rooms("room", "config"),
                    ShowConfigEvent,
                    self._on_show_config,
                    start=time.time(),
                )
                # The operator console's feeds (console/feeds.py): each show's when a console
                # first opens it here (with the recent past), the default show's too.
                await self.console.start(bus)
            except Exception as error:  # noqa: BLE001 - whatever it is, keep retrying
                log.warning("NATS not ready (%s); retrying in 2 s", mask_url(str(error)))
                await asyncio.sleep(2)
                continue
            self.bus = bus
            log.info("edge connected to NATS at %s", mask_url(self.nats.url))
            return

    async def _on_host_job(self, msg: Msg) -> None:
        try:
            event = HostJobEvent.from_json(msg.data)
        except ValidationError as error:
            log.warning("ignoring a malformed host job event: %s", error.errors(include_url=False))
            return
        cache = self.host_cache_for(event.room)
        try:
            if event.event == "ended":
                await cache.job_ended(event.job_id)
            else:
                await cache.set(HostState.PRESENT)
        except RedisError as error:
            log.warning("host job event %s not cached (Redis: %r)", event.id, error)
        if event.event == "ended":
            self.reconciler.wake(event.room, Trigger.JOB_ENDED)

    async def _on_host_worker(self, msg: Msg) -> None:
        try:
            event = HostWorkerEvent.from_json(msg.data)
        except ValidationError as error:
            log.warning(
                "ignoring a malformed host worker event: %s", error.errors(include_url=False)
            )
            return
        log.info("host worker %s registered; looking for rooms it can host", event.worker_id)
        try:
            await self.workers.registered(now_ms())
        except RedisError as error:
            log.warning("host worker registration not recorded (Redis: %r)", error)
        self.reconciler.worker_registered()

    async def _on_show_config(self, observed: Observed[ShowConfigEvent]) -> None:
        self.known_shows.follow(observed.model)

    async def _on_egress(self, msg: Msg) -> None:
        try:
            event = EgressEvent.from_json(msg.data)
        except ValidationError as error:
            log.warning("ignoring a malformed egress event: %s", error.errors(include_url=False))
            return
        if self.egress is not None:
            self.egress.tracker.saw(event)

    async def close(self) -> None:
        for task in (self._reconciler_task, self._bus_task):
            if task is not None:
                task.cancel()
        if self._reconciler_task is not None:
            # it may be mid-call to LiveKit or Redis: let it end before they are closed
            await asyncio.gather(self._reconciler_task, return_exceptions=True)
        await self.media_client.aclose()
        await self.console.stop()
        if self._shows_watch is not None:
            with contextlib.suppress(Exception):  # NATS may be gone already
                await self._shows_watch.stop()
        if self.bus is not None:
            await self.bus.close()
        await self.gateway.aclose()
        if self.egress is not None:
            await self.egress.aclose()
        await self.redis.aclose()

    def require_bus(self) -> Bus:
        if self.bus is None or not self.bus.connected:
            raise BusUnavailable("not connected to NATS")
        return self.bus

    async def announce_to_pages(self, subject: str, event: WireModel, room: str) -> None:
        """Publish an operator's change (already recorded in Redis) on `subject`, and send it
        to the room's pages on the stage data topic. LiveKit not answering only delays the
        pages (they read the record from `/api/config` when they load): logged, not raised."""
        await self.require_bus().publish(subject, event)
        try:
            await self.gateway.send_to_room(room, self.topics.stage_topic, event.to_json())
        except LiveKitError as error:
            log.warning(
                "room %s: %s not sent to the pages (%s); they read it from /api/config",
                room,
                type(event).__name__,
                error,
            )


# The dependencies below are `async def` although they do not await: FastAPI runs a plain `def`
# dependency in a worker thread, and those hops were a large part of a chat POST's cost.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_client_ip(request: Request, services: ServicesDep) -> str:
    peer = request.client.host if request.client else "unknown"
    return client_ip(peer, request.headers.get("x-forwarded-for"), services.trusted_proxies)


ClientIp = Annotated[str, Depends(get_client_ip)]


async def get_client_network(ip: ClientIp) -> str:
    return client_network(ip)


ClientNetwork = Annotated[str, Depends(get_client_network)]


def secure_cookie(request: Request, services: Services) -> bool:
    """Whether a cookie the edge sets gets `Secure`: TOKEN_COOKIE_SECURE, and with `auto` when
    the request came over https (X-Forwarded-Proto from a trusted proxy counts)."""
    setting = services.edge.cookie_secure
    if setting != "auto":
        return setting == "always"
    peer = request.client.host if request.client else ""
    proto = forwarded_proto(
        peer, request.headers.get("x-forwarded-proto"), services.trusted_proxies
    )
    return (proto or request.url.scheme) == "https"


BearerHeader = Annotated[str | None, Header(description="Bearer <viewer token>")]


async def get_viewer(services: ServicesDep, authorization: BearerHeader = None) -> Viewer:
    """The viewer behind the bearer token; their room is the one its grant joins, which must
    be a show (401 for one deleted since the token was minted, as for any other room)."""
    return await viewer_of(services, authorization)


async def viewer_of(services: Services, authorization: str | None) -> Viewer:
    """`get_viewer` as a plain call (`admit_chat` solves everything itself)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing 'Authorization: Bearer <viewer token>' header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        viewer = services.viewer_tokens.verify(authorization[7:].strip())
    except ViewerAuthError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(error), headers={"WWW-Authenticate": "Bearer"}
        ) from error
    if not await services.known_shows.exists(viewer.room, services.shows):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"token is not for this room: no show is named {viewer.room!r} (any more)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def banned(ban: Ban | Refusal, what: str) -> HTTPException:
    """403 saying that (the visitor, or their network), and until when."""
    refusal = ban if isinstance(ban, Refusal) else Refusal(ban, by_network=False)
    if refusal.until_ms:
        until = datetime.datetime.fromtimestamp(refusal.until_ms / 1000, tz=datetime.UTC)
        when = f"until {until.isoformat(timespec='seconds').replace('+00:00', 'Z')}"
    else:
        when = "permanently"
    who = "your network is banned" if refusal.by_network else "banned"
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=f"{who} from this room {when}: {what} refused",
    )


async def refuse_banned(
    services: Services,
    room: str,
    visitor_tag: str,
    network: str,
    what: str,
    *,
    new_visitor: bool = False,
) -> None:
    """403 when the visitor (unless the edge just made them up) or their network is banned
    from `room`'s show; and note the network they came from, which a network ban of this
    visitor would ban (one Redis round trip for both)."""
    refusal = await services.bans.refusal_noting(
        room,
        visitor_tag,
        network,
        services.edge.visitor_network_ttl_s,
        new_visitor=new_visitor,
    )
    if refusal is not None:
        raise banned(refusal, what)


@dataclass(frozen=True)
class ChatSender:
    """Who may send this chat line (`admit_chat`), and the services to send it with."""

    viewer: Viewer
    services: Services


async def admit_chat(request: Request, authorization: BearerHeader = None) -> ChatSender:
    """Whether this chat message may go on, in this order: the viewer's token (`get_viewer`),
    then a stage token or a banned visitor is refused before it uses up a limit.

    The one dependency of `POST /api/chat`, which solves the viewer, the client's network and
    the services itself with plain calls: FastAPI's solving of a dependency tree (five
    dependencies before) was a large part of the cost of the busiest route."""
    services = await get_services(request)
    peer = request.client.host if request.client else "unknown"
    network = services.network_of(peer, request.headers.get("x-forwarded-for"))
    return await admit_sender(services, authorization, network)


async def admit_sender(services: Services, authorization: str | None, network: str) -> ChatSender:
    """`admit_chat` once the request's headers are read (`chat_ingress.py` reads them itself,
    in one pass over the raw headers)."""
    viewer = await viewer_of(services, authorization)
    if viewer.role != "viewer":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"a '{viewer.role}' token may watch but not chat: "
            "the stage page's token is subscribe-only",
        )
    limits = services.limits
    checks = [(limits.chat_per_visitor, viewer.visitor_tag), (limits.chat_per_network, network)]
    outcome = await services.chat_admission.hit(viewer.room, viewer.visitor_tag, network, checks)
    if outcome == BAN_ENTRY:  # maybe banned: decided as for any other route, then counted
        await refuse_banned(services, viewer.room, viewer.visitor_tag, network, "chat")
        await services.limiter.check_all(checks)
    elif outcome:
        await services.limiter.refuse(*checks[outcome - 1])
    return ChatSender(viewer, services)


async def limit_history(viewer: ViewerDep, network: ClientNetwork, services: ServicesDep) -> None:
    limits = services.limits
    await services.limiter.check_all(
        [(limits.history_per_visitor, viewer.visitor_tag), (limits.history_per_network, network)]
    )


async def show_in_query(
    services: ServicesDep,
    show: Annotated[
        str | None,
        Query(
            pattern=f"^{ROOM_NAME_PATTERN.pattern}$",
            description="The show (its room name); default: the deployment's default show "
            "(LIVEKIT_ROOM). 404 when no show has that name.",
        ),
    ] = None,
) -> str:
    return await services.require_show(show or services.livekit.room)


ShowRoom = Annotated[str, Depends(show_in_query)]
"""The room of the show named by the `show` query parameter (404 when unknown)."""


async def limit_token_network(network: ClientNetwork, services: ServicesDep) -> None:
    await services.limiter.check(services.limits.token_per_network, network)


async def limit_status(network: ClientNetwork, services: ServicesDep) -> None:
    await services.local_limiter.check(services.limits.status_per_network, network)
