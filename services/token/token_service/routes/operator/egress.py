"""Going live without OBS: `/api/operator/egress` (operator dependency).

Every route takes `?show=<room>` (default: the default show; 404 when unknown). `POST` starts a
LiveKit web egress of the show's stage page (TOKEN_EGRESS_STAGE_URL, with `show=<room>` added
for a show other than the default) to
`<rtmpUrl>/<streamKey>` and answers 202 with the `EgressEvent` (status `starting`); the egress
webhooks then tell its progress on `room.egress.<room>` (`routes/ops.py`). `GET` lists the room's
egresses from LiveKit (live ones first), `DELETE .../{egressId}` stops one (202).

The stream key is a secret: it is sent to LiveKit and nowhere else. Responses, logs and NATS
carry `target`, the RTMP URL without it; a LiveKit error that quotes it is masked. Errors: 422
naming `rtmpUrl` or `streamKey`; 409 while an egress of the room is live; LiveKit refusing the
request is a 502 with its message; LiveKit (or its egress service) unreachable or not answering
is a 503 + Retry-After (livekit-server answers 503 "no response from servers" when no egress
worker runs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, status
from pydantic import Field, SecretStr, field_validator

from livestage import subjects
from livestage.schemas import EgressEvent

from ...deps import Services, ServicesDep, ShowRoom
from ...egress import EGRESS_ID, LIVE, Egresses, rtmp_url_problem, stream_key_problem
from ...errors import LIVEKIT_RESPONSES, RESPONSES, UNKNOWN_SHOW, unavailable
from ...livekit_gateway import LiveKitError
from ...models import ApiModel, ErrorResponse
from .auth import operator_router

router = operator_router("/egress", ["operator: egress"], UNKNOWN_SHOW)


class EgressRequest(ApiModel):
    """Where to stream the stage: the platform's RTMP ingest URL and the stream key."""

    rtmp_url: str = Field(
        max_length=2048,
        description="rtmp:// or rtmps:// ingest URL, e.g. rtmp://a.rtmp.youtube.com/live2",
    )
    stream_key: SecretStr = Field(
        description="The platform's stream key (1-200 characters, no whitespace or slash); "
        "never shown back."
    )
    width: int = Field(1280, ge=320, le=1920, multiple_of=2)
    height: int = Field(720, ge=240, le=1920, multiple_of=2)

    @field_validator("rtmp_url")
    @classmethod
    def _rtmp(cls, value: str) -> str:
        problem = rtmp_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("stream_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        problem = stream_key_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value


class EgressList(ApiModel):
    egresses: list[EgressEvent]


def _egresses(services: Services) -> Egresses:
    if services.egress is None:
        raise unavailable("the egress service", cause="not set up yet")
    return services.egress


def _without(error: LiveKitError, secret: str) -> LiveKitError:
    """The same error, its message with the stream key masked (LiveKit may quote the URL)."""
    if secret and secret in str(error):
        masked = type(error)(str(error).replace(secret, "***"))
        masked.__cause__ = None
        return masked
    return error


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EgressEvent,
    response_model_by_alias=True,
    responses={
        409: {"model": ErrorResponse, "description": "An egress of the room is live already"},
        422: RESPONSES[422],
        **LIVEKIT_RESPONSES,
    },
)
async def start_egress(body: EgressRequest, services: ServicesDep, room: ShowRoom) -> EgressEvent:
    """Stream the show's stage page to an RTMP ingest (YouTube, Twitch, ...) through LiveKit
    Egress (`show`; default: the default show).

    202 with the egress (status `starting`); its progress arrives as `EgressEvent`s."""
    egresses = _egresses(services)
    live = [e for e in await egresses.list(room) if e.status in LIVE]
    if live:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"egress {live[0].egress_id} to {live[0].target} is {live[0].status}: "
            "stop it first (DELETE /api/operator/egress/{egressId})",
        )
    key = body.stream_key.get_secret_value()
    try:
        event = await egresses.start(room, body.rtmp_url, key, body.width, body.height)
    except LiveKitError as error:
        raise _without(error, key) from None
    await services.require_bus().publish(subjects.room_egress(room), event)
    return event


@router.get("", response_model=EgressList, response_model_by_alias=True)
async def list_egresses(services: ServicesDep, room: ShowRoom) -> EgressList:
    """The show's egresses LiveKit knows (live ones first), with their state and errors."""
    return EgressList(egresses=await _egresses(services).list(room))


@router.delete(
    "/{egress_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EgressEvent,
    response_model_by_alias=True,
    responses={404: {"model": ErrorResponse, "description": "No such egress of this room"}},
)
async def stop_egress(
    egress_id: Annotated[str, Path(pattern=EGRESS_ID.pattern, max_length=128)],
    services: ServicesDep,
    room: ShowRoom,
) -> EgressEvent:
    """Stop the show's egress; LiveKit ends the stream (status `ending`, then `complete`)."""
    egresses = _egresses(services)
    record = await egresses.records.get(egress_id)
    if record is None or record.room != room:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no egress {egress_id} was started for this room"
        )
    return await egresses.stop(room, egress_id)
