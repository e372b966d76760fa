"""LiveKit webhooks (presence events onto NATS) and health checks."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from livekit import api
from livekit.protocol.models import ParticipantInfo

from livestage import subjects
from livestage.schemas import PresenceEvent, now_ms

from .deps import ServicesDep
from .models import ErrorResponse, HealthResponse

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

PRESENCE_EVENTS = {"participant_joined", "participant_left", "room_started", "room_finished"}
KIND_NAMES = {
    ParticipantInfo.Kind.STANDARD: "standard",
    ParticipantInfo.Kind.AGENT: "agent",
    ParticipantInfo.Kind.INGRESS: "ingress",
    ParticipantInfo.Kind.EGRESS: "egress",
    ParticipantInfo.Kind.SIP: "sip",
}


@router.post(
    "/api/livekit/webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def livekit_webhook(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Verify LiveKit's signature and publish presence events to `room.presence.<room>`."""
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
    await services.require_bus().publish(subjects.room_presence(room), presence)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
        await services.require_lkapi().room.list_rooms(api.ListRoomsRequest())
        return "ok"

    checks: dict[str, str] = {}
    for name, check in (("nats", nats_check), ("redis", redis_check), ("livekit", livekit_check)):
        try:
            checks[name] = await asyncio.wait_for(check(), timeout=2)
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            checks[name] = f"unavailable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthResponse(status="ready" if ready else "not ready", checks=checks)
