"""LiveKit webhooks (presence and egress events onto NATS); liveness, readiness and dependency
status."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from livekit import api
from livekit.protocol.models import ParticipantInfo

from livestage import metrics, subjects
from livestage.identity import is_viewer_identity
from livestage.schemas import PresenceEvent, now_ms

from ..deps import ServicesDep, limit_status
from ..dispatch.decision import Participant, is_our_host
from ..dispatch.dispatcher import HostState
from ..dispatch.schedule import Trigger
from ..egress import FAILED, egress_event
from ..errors import unavailable
from ..models import (
    DependencyDetail,
    DependencyStatus,
    ErrorResponse,
    HealthResponse,
    OperatorStatusResponse,
    StatusResponse,
)
from ..status import DependencyState, State, overall
from .operator.auth import operator_router

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
operator_status_router = operator_router(tags=["operator"])

PRESENCE_EVENTS = {"participant_joined", "participant_left", "room_started", "room_finished"}
EGRESS_EVENTS = {"egress_started", "egress_updated", "egress_ended"}
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
    host reconciler look at the room when our agent left or a viewer joined. Egress events of
    an egress the edge started become `EgressEvent`s on `room.egress.<room>`.

    The body is capped (`TOKEN_MAX_WEBHOOK_BODY_BYTES`) before it is read or verified."""
    body = (await request.body()).decode("utf-8", errors="replace")
    receiver = api.WebhookReceiver(api.TokenVerifier(services.livekit.api_key, services.api_secret))
    try:
        event = receiver.receive(body, authorization or "")
    except Exception as error:  # the receiver raises plain Exceptions for hash mismatches
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=f"webhook signature rejected: {error}"
        ) from error

    if event.event in EGRESS_EVENTS:
        await _egress_event(services, event)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
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


async def _egress_event(services: ServicesDep, event: api.WebhookEvent) -> None:
    """A web egress has no room in LiveKit's eyes: the edge's record of the egresses it started
    says whose it is (and the ingest, without the key). Others' egresses are not ours to tell."""
    if services.egress is None:
        return
    info = event.egress_info
    record = await services.egress.records.get(info.egress_id)
    if record is None:
        log.info("egress %s is not one this edge started; ignoring its webhook", info.egress_id)
        return
    egress = egress_event(
        info,
        record.room,
        record.target,
        event_id=(event.id or f"{event.event}-{info.egress_id}-{info.updated_at}")[:64].replace(
            ".", "_"
        ),
    )
    if egress.status in FAILED:
        log.warning(
            "egress %s to %s %s: %s", egress.egress_id, egress.target, egress.status, egress.error
        )
        if await services.egress.records.first_failure(egress.egress_id):
            metrics.counter(metrics.EGRESSES_FAILED).add(1, {"room": record.room})
    await services.require_bus().publish(
        subjects.room_egress(record.room), egress, timeout_s=services.edge.nats_timeout_s
    )


async def _update_host_cache(services: ServicesDep, room: str, event: api.WebhookEvent) -> None:
    """Any room's: the reconciler only acts on a room that is a show."""
    cache = services.host_cache_for(room)
    if event.event == "room_finished":
        await cache.forget()
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
        await cache.set(HostState.PRESENT)
    else:
        await cache.forget()
        services.reconciler.wake(room, Trigger.HOST_LEFT)


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """Liveness: the process answers, so its event loop turns. Checks no dependency (a
    dependency that is down is no reason to restart the edge)."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def readyz(services: ServicesDep, response: Response) -> HealthResponse:
    """Readiness: the edge has started (connected to NATS and heard from Redis once). After
    that it stays ready: a dependency going down later is the same for every replica, and taking
    them all out of the Service would turn "tokens (or chat) fail for a while" into "nothing,
    not even the page, answers". Routes meet an outage with their own 503 + Retry-After;
    `/statusz` says what is down."""
    if services.started:
        return HealthResponse(status="ready", checks={"startup": "done"})
    nats_state = "ok" if services.bus is not None else "not connected yet"
    try:
        async with asyncio.timeout(services.edge.redis_timeout_s):
            await services.redis.ping()
        redis_state = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means not started yet
        redis_state = f"unavailable: {type(error).__name__}"
    checks = {"nats": nats_state, "redis": redis_state}
    if nats_state == redis_state == "ok":
        services.started = True
        return HealthResponse(status="ready", checks=checks)
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthResponse(status="starting", checks=checks)


async def _status(services: ServicesDep) -> tuple[State, dict[str, DependencyState]]:
    try:
        states = dict(await services.status.current())
    except TimeoutError as error:  # only right after start, while the first checks hang
        raise unavailable(
            "the dependency status", retry_after_s=1, cause="not checked yet"
        ) from error
    return overall(states.values()), states


@router.get(
    "/statusz",
    response_model=StatusResponse,
    response_model_by_alias=True,
    dependencies=[Depends(limit_status)],
    responses={
        429: {"model": ErrorResponse, "description": "Asked too often; see Retry-After"},
        503: {"model": ErrorResponse, "description": "Just started: not checked yet"},
    },
)
async def statusz(services: ServicesDep) -> StatusResponse:
    """Each dependency as ok, degraded or down, and what needs it: from the edge's last check
    (one per TOKEN_STATUS_INTERVAL_S, whatever the request rate). Always 200 once checked; the
    operator's `/api/operator/status` adds what each check saw."""
    overall_state, states = await _status(services)
    return StatusResponse(
        status=overall_state,
        checked_at=services.status.checked_at_ms,
        dependencies={
            name: DependencyStatus(state=s.state, needed_by=list(s.needed_by))
            for name, s in states.items()
        },
    )


@operator_status_router.get(
    "/status", response_model=OperatorStatusResponse, response_model_by_alias=True
)
async def operator_status(services: ServicesDep) -> OperatorStatusResponse:
    """`/statusz` with what each check saw and how long it took."""
    overall_state, states = await _status(services)
    return OperatorStatusResponse(
        status=overall_state,
        checked_at=services.status.checked_at_ms,
        dependencies={
            name: DependencyDetail(
                state=s.state, needed_by=list(s.needed_by), detail=s.detail, latency_ms=s.latency_ms
            )
            for name, s in states.items()
        },
    )
