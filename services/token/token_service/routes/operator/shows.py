"""Many shows on one deployment: `/api/operator/shows` (operator).

A show is a room with its configuration (`livestage.schemas.ShowConfig`: title, persona, voice
and avatar backends, stage topics and providers, moderation words and room cap, platform chat,
daily spend cap), kept by `livestage.shows.ShowStore` in Redis beside its state and layout.

- `POST ""` creates (body: the ShowConfig fields but `createdAt`/`updatedAt`, plus an optional
  `layout`): 201, or 409 when the room is a show already;
- `GET ""` lists every show (the default first): config, state, layout; `GET /{room}` one;
- `PATCH /{room}` changes some fields (objects merge key by key; `null` sets the deployment's
  setting); the result is validated as a whole ShowConfig;
- `POST /{room}/end` and `/{room}/start`: as `/api/operator/show/end` and `/start`;
- `DELETE /{room}` ends it (reason `deleted`), then forgets it: 204; the default show: 409.

Unknown shows are 404.

Every create, change and delete publishes a `ShowConfigEvent` on `room.config.<room>` (config
null on delete) after Redis holds it, for the services that follow shows over NATS. The bus is
checked first, so a 503 for a down NATS means nothing changed. Bad input is a 422 naming the
field (`body`, then the camelCase path, e.g. `["body", "moderation", "blockedWords"]`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Body, HTTPException, Path, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from livestage import subjects
from livestage.schemas import Layout, ShowConfig, ShowConfigEvent, ShowState, new_id, now_ms
from livestage.shows import DefaultShowKept, ShowExists, UnknownShow

from ...deps import Services, ServicesDep
from ...errors import RESPONSES, UNKNOWN_SHOW
from ...models import ApiModel, ErrorResponse
from .auth import operator_router
from .show import EndShowRequest, end_show_in, start_show_in

log = logging.getLogger(__name__)
router = operator_router("/shows", ["operator: shows"], UNKNOWN_SHOW | {422: RESPONSES[422]})

TIMESTAMPS = ("created_at", "updated_at")
CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorResponse, "description": "Conflicts with the shows there are"}
}
RoomPath = Annotated[
    str,
    Path(
        pattern=f"^{subjects.ROOM_NAME_PATTERN.pattern}$",
        description="The show's room name.",
    ),
]


class ShowCreateRequest(ShowConfig):
    """A new show: every ShowConfig field but the timestamps (the edge sets them), plus the
    layout its stage starts with."""

    created_at: SkipJsonSchema[None] = None  # type: ignore[assignment]
    updated_at: SkipJsonSchema[None] = None  # type: ignore[assignment]
    layout: Layout | None = Field(None, description="The stage layout; default: the default.")

    @field_validator(*TIMESTAMPS, mode="before")
    @classmethod
    def _set_by_the_edge(cls, value: object) -> None:
        if value is not None:
            raise ValueError("is set by the edge: leave it out")
        return None


class ShowInfo(ApiModel):
    config: ShowConfig
    state: ShowState
    reason: str = Field(description="The operator's note when the show was ended.")
    layout: Layout


class ShowList(ApiModel):
    shows: list[ShowInfo]


async def _info(services: Services, config: ShowConfig) -> ShowInfo:
    show = await services.shows.get(config.room)
    return ShowInfo(config=config, state=show.state, reason=show.reason, layout=show.layout)


async def _config_of(services: Services, room: str) -> ShowConfig:
    config = await services.shows.config(room)
    if config is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no show named {room!r}")
    return config


async def _publish(services: Services, room: str, config: ShowConfig | None) -> None:
    event = ShowConfigEvent(id=new_id(), room=room, config=config, created_at=now_ms())
    await services.require_bus().publish(subjects.room_config(room), event)


def merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` over `current`: objects merge key by key, anything else (null too) replaces."""
    merged = dict(current)
    for key, value in patch.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = merge(old, value)
        else:
            merged[key] = value
    return merged


def _body_error(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ShowInfo,
    response_model_by_alias=True,
    responses=CONFLICT,
)
async def create_show(body: ShowCreateRequest, services: ServicesDep) -> ShowInfo:
    """Create a show; viewers find it at `/s/<room>`, OBS at `/stage?show=<room>`."""
    services.require_bus()
    now = now_ms()
    fields = {name: value for name, value in body if name not in (*TIMESTAMPS, "layout")}
    config = ShowConfig(**fields, created_at=now, updated_at=now)
    try:
        await services.shows.create(config)
    except ShowExists as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"a show named {config.room!r} exists already: change it with PATCH "
            f"/api/operator/shows/{config.room}",
        ) from error
    if body.layout is not None:
        await services.shows.set_layout(config.room, body.layout)
    log.info("show %s created", config.room)
    await _publish(services, config.room, config)
    services.reconciler.shows_changed()
    return await _info(services, config)


@router.get("", response_model=ShowList, response_model_by_alias=True)
async def list_shows(services: ServicesDep) -> ShowList:
    """Every show, the default first, then by name."""
    shows = []
    for room in await services.shows.rooms():
        config = await services.shows.config(room)
        if config is not None:  # deleted meanwhile, or a record this version cannot read
            shows.append(await _info(services, config))
    return ShowList(shows=shows)


@router.get("/{room}", response_model=ShowInfo, response_model_by_alias=True)
async def get_show(room: RoomPath, services: ServicesDep) -> ShowInfo:
    """One show: its configuration, whether it is live, its layout."""
    return await _info(services, await _config_of(services, room))


@router.patch("/{room}", response_model=ShowInfo, response_model_by_alias=True)
async def change_show(
    room: RoomPath,
    services: ServicesDep,
    patch: Annotated[
        dict[str, Any],
        Body(
            description="The ShowConfig fields to change (camelCase), e.g. "
            '`{"title": "Late show", "moderation": {"blockedWords": ["spoiler"]}}`: objects '
            "merge, `null` means the deployment's setting. `room`, `createdAt` and "
            "`updatedAt` cannot change.",
        ),
    ],
) -> ShowInfo:
    """Change a show's configuration; the services that use it follow at once (the host's
    persona and backends at its next job)."""
    services.require_bus()
    current = await _config_of(services, room)
    for key in ("room", "createdAt", "updatedAt", *TIMESTAMPS):
        if key in patch and not (key == "room" and patch[key] == room):
            raise _body_error(key, "cannot change: it is the show's name or set by the edge")
    fields = merge(current.model_dump(by_alias=True), patch) | {"updatedAt": now_ms()}
    try:
        config = ShowConfig.model_validate(fields)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from error
    try:
        await services.shows.replace(config)
    except UnknownShow as error:  # deleted meanwhile
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no show named {room!r}") from error
    log.info("show %s changed (%s)", room, ", ".join(sorted(patch)))
    await _publish(services, room, config)
    return await _info(services, config)


@router.post("/{room}/end", response_model=ShowInfo, response_model_by_alias=True)
async def end_show(
    room: RoomPath,
    services: ServicesDep,
    request: Annotated[EndShowRequest | None, Body()] = None,
) -> ShowInfo:
    """End the show (as `POST /api/operator/show/end?show=<room>`)."""
    config = await _config_of(services, room)
    await end_show_in(services, room, request.reason if request else "")
    return await _info(services, config)


@router.post("/{room}/start", response_model=ShowInfo, response_model_by_alias=True)
async def start_show(room: RoomPath, services: ServicesDep) -> ShowInfo:
    """Start the show again (as `POST /api/operator/show/start?show=<room>`)."""
    config = await _config_of(services, room)
    await start_show_in(services, room)
    return await _info(services, config)


@router.delete("/{room}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
async def delete_show(room: RoomPath, services: ServicesDep) -> Response:
    """End the show (reason `deleted`: its host leaves, its stage stops, its pages say it has
    ended), then forget it: its page, tokens and chat answer 404 from then on."""
    if room == services.livekit.room:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"{room!r} is the deployment's default show (LIVEKIT_ROOM) and cannot be "
            f"deleted; end it with POST /api/operator/shows/{room}/end instead",
        )
    await _config_of(services, room)
    await end_show_in(services, room, "deleted")
    try:
        await services.shows.delete(room)
    except (UnknownShow, DefaultShowKept) as error:  # deleted meanwhile by another request
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no show named {room!r}") from error
    await services.host_cache_for(room).forget()
    services.known_shows.forget(room)  # this worker refuses its tokens at once (others soon)
    log.info("show %s deleted", room)
    await _publish(services, room, None)
    services.reconciler.shows_changed()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
