"""LiveKit webhooks (presence events onto NATS) and health checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from livekit import api
from livekit.protocol.models import ParticipantInfo

from livestage import subjects
from livestage.identity import is_viewer_identity
from livestage.schemas import PresenceEvent, now_ms

from ..deps import ServicesDep
from ..dispatch.decision import Participant, is_our_host
from ..dispatch.dispatcher import HostState
from ..dispatch.schedule import Trigger
from ..models import ErrorResponse, HealthResponse

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

PRESENCE_EVENTS = {"participant_joined", "participant_left", "room_started", "room_finished"}
ParticipantKindName = Literal["", "standard", "agent", "ingress", "egress", "sip"]
KIND_NAMES: dict[int, ParticipantKindName] = {
    ParticipantInfo.Kind.STANDARD: "standard",
    ParticipantInfo.Kind.AGENT: "agent",
    ParticipantInfo.Kind.INGRESS: "ingress",
    ParticipantInfo.Kind.EGRESS: "egress",
    ParticipantInfo.Kind.SIP: "sip",
}


@router.post(
    "/api/livekit/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        401: {"model": ErrorResponse, "description": "Signature missing or wrong"},
        413: {"model": ErrorResponse, "description": "Body over the webhook cap; not read"},
        503: {"model": ErrorResponse, "description": "A backend is down; see Retry-After"},
    },
)
async def livekit_webhook(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Verify LiveKit's signature, publish presence events to `room.presence.<room>`, keep
    the host-state cache current (our agent joined or left, the room finished), and have the
    host reconciler look at the room when our agent left or a viewer joined.

    The body is capped (`TOKEN_MAX_WEBHOOK_BODY_BYTES`) before it is read or verified."""
    body = (await request.body()).decode("utf-8", errors="replace")
    receiver = api.WebhookReceiver(api.TokenVerifier(services.livekit.api_key, services.api_secret))
    try:
        event = receiver.receive(body, authorization or "")
    except Exception as error:  # the receiver raises plain Exceptions for hash mismatches
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=f"webhook signature rejected: {error}"
        ) from error

    if event.event not in PRESENCE_EVENTS:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    try:
        room = subjects.check_room(event.room.name)
    except subjects.InvalidRoomName:
        log.warning("webhook for a room name we cannot route: %r", event.room.name)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    participant = event.participant
    await _update_host_cache(services, room, event)
    presence = PresenceEvent(
        id=(event.id or f"{event.event}-{event.created_at}")[:64].replace(".", "_"),
        room=room,
        event=event.event,  # type: ignore[arg-type]
        identity=participant.identity[:128],
        name=participant.name[:128],
        participant_kind=KIND_NAMES.get(participant.kind, "")
        if event.event.startswith("participant")
        else "",
        created_at=event.created_at * 1000 if event.created_at else now_ms(),
    )
    # A BusUnavailable here is a 503 (errors.py); LiveKit retries webhooks that fail.
    await services.require_bus().publish(
        subjects.room_presence(room), presence, timeout_s=services.edge.nats_timeout_s
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _update_host_cache(services: ServicesDep, room: str, event: api.WebhookEvent) -> None:
    if room != services.livekit.room:
        return
    if event.event == "room_finished":
        await services.host_cache.forget()
        return
    if not event.event.startswith("participant"):
        return
    participant = event.participant
    view = Participant(
        identity=participant.identity,
        is_agent=participant.kind == ParticipantInfo.Kind.AGENT,
        attributes=dict(participant.attributes),
    )
    if not is_our_host(view, services.livekit.agent_name, frozenset(), frozenset()):
        if (
            event.event == "participant_joined"
            and not view.is_agent
            and is_viewer_identity(view.identity)
        ):
            # maybe a page rejoining with the token it had (after a LiveKit restart): no token
            # request will ask for its host
            services.reconciler.wake(room, Trigger.VIEWER_JOINED)
        return
    if event.event == "participant_joined":
        await services.host_cache.set(HostState.PRESENT)
    else:
        await services.host_cache.forget()
        services.reconciler.wake(room, Trigger.HOST_LEFT)


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """The process is up."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def readyz(services: ServicesDep, response: Response) -> HealthResponse:
    """NATS (with JetStream), Redis and LiveKit all answer."""

    async def nats_check() -> str:
        bus = services.require_bus()
        await bus.js.account_info()
        return "ok"

    async def redis_check() -> str:
        await services.redis.ping()
        return "ok"

    async def livekit_check() -> str:
        await services.gateway.call(
            "list_rooms", lambda lk: lk.room.list_rooms(api.ListRoomsRequest())
        )
        return "ok"

    edge = services.edge

    async def bounded(check: Callable[[], Awaitable[str]], timeout_s: float) -> str:
        try:
            return await asyncio.wait_for(check(), timeout=timeout_s)
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            return f"unavailable: {type(error).__name__}"

    nats_state, redis_state, livekit_state = await asyncio.gather(
        bounded(nats_check, edge.nats_timeout_s),
        bounded(redis_check, edge.redis_timeout_s),
        bounded(livekit_check, edge.livekit_timeout_s),
    )
    checks = {"nats": nats_state, "redis": redis_state, "livekit": livekit_state}
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthResponse(status="ready" if ready else "not ready", checks=checks)
