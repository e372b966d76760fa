"""Operator routes for the stage (`/api/operator/stage/...`, operator bearer secret).

Every route acts on the show named by `room` in the body (default: the default show,
LIVEKIT_ROOM) and answers 404 when no show has that name, like the `?show=` routes.

Each route publishes one `StageCommand` on `stage.command.<room>` and answers 202 with its id
once JetStream stored it (503 when the bus is down); the stage producer carries it out and
publishes the visual as usual.

`POST /layout` is different: the layout is the edge's to keep. It writes the room's layout to
the show record in Redis (what `GET /api/config` gives a page that joins later), publishes a
`StageLayoutEvent` on `stage.layout.<room>` and sends the same event to the room's pages on the
stage data topic (`Services.announce_to_pages`, as the show routes do), answering 200
`{room, layout}` (503 when Redis or NATS is down: nothing was changed, the operator tries again;
LiveKit not answering only delays the pages until they reload, and is logged).

A capture URL the stage producer would refuse for what the URL itself says is refused here at
once, 422 on `url` with the reason, and nothing is published: not http(s), credentials in it, a
malformed or loopback host name, an address literal in a refused range (private, loopback,
link-local, ...), a port off STAGE_ALLOWED_PORTS, a host under STAGE_BLOCKED_DOMAINS. These are
the producer's own rules (`livestage.domains.capture_refusal` over `livestage.egress`, the same
STAGE_* settings). An operator's capture is not held to STAGE_ALLOWED_DOMAINS (as in the
producer). This is an early, partial answer: the edge never resolves a name or connects, so a
202 does not promise a visual. The producer's egress policy stays the authority (a name that
resolves to a private address, a redirect to a blocked host, a page that fails moderation) and
logs why it refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from livestage import subjects
from livestage.domains import capture_refusal
from livestage.schemas import Layout, StageCommand, StageLayoutEvent, new_id, now_ms
from livestage.text import clean_text

from ...deps import ServicesDep
from ...errors import RESPONSES, UNKNOWN_SHOW, field_error
from .auth import operator_router

router = operator_router("/stage", ["operator: stage"], UNKNOWN_SHOW)

ROOM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VISUAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value, flags=re.IGNORECASE):
        raise ValueError("must be an absolute http:// or https:// URL without spaces")
    return value


def _prompt(value: str) -> str:
    cleaned = clean_text(value)
    if not 1 <= len(cleaned) <= 300:
        raise ValueError(f"must be 1-300 visible characters (got {len(cleaned)})")
    return cleaned


class _Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )

    room: str | None = Field(
        default=None,
        pattern=ROOM.pattern,
        description="The show (room) to act on; default: the default show (LIVEKIT_ROOM); "
        "404 when no show has that name.",
    )


class CaptureBody(_Body):
    url: Annotated[str, Field(max_length=2048), AfterValidator(_url)]
    kind: Literal["screenshot", "clip"] = "screenshot"


class BackdropBody(_Body):
    prompt: Annotated[str, Field(max_length=1200), AfterValidator(_prompt)]


class PinBody(_Body):
    visual_id: str = Field(pattern=VISUAL_ID.pattern, description="The StageVisual's id.")


class LayoutBody(_Body):
    layout: Layout = Field(description="Where the host stands on the stage.")


class LayoutChosen(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    room: str
    layout: Layout


class CommandAccepted(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    id: str
    room: str
    action: str


async def _room(services: ServicesDep, body: _Body) -> str:
    """The body's room, or the default show's; 404 when no show has that name."""
    return await services.require_show(body.room or services.livekit.room)


async def _send(services: ServicesDep, body: _Body, **fields: str) -> CommandAccepted:
    room = await _room(services, body)
    command = StageCommand(id=new_id(), room=room, created_at=now_ms(), **fields)  # type: ignore[arg-type]
    await services.require_bus().publish(subjects.stage_command(room), command)
    return CommandAccepted(id=command.id, room=room, action=command.action)


@router.post(
    "/capture",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAccepted,
    responses={422: RESPONSES[422]},
)
async def capture_now(body: CaptureBody, services: ServicesDep) -> CommandAccepted:
    """Capture this URL now (screenshot or scrolling clip) and put it on screen.

    422 on `url`, with the reason, for a URL the stage producer would refuse from the URL alone
    (scheme, credentials, a private or loopback address literal, port, STAGE_BLOCKED_DOMAINS);
    the producer still checks everything, the resolved address included, when it captures."""
    stage = services.stage_domains
    refusal = capture_refusal(body.url, stage.egress_policy(), stage.domain_lists())
    if refusal is not None:
        raise field_error("url", f"the stage will not capture this URL: {refusal.reason}")
    return await _send(services, body, action="capture", url=body.url, kind=body.kind)


@router.post("/backdrop", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def generate_backdrop(body: BackdropBody, services: ServicesDep) -> CommandAccepted:
    """Generate a backdrop for this prompt and put it on screen."""
    return await _send(services, body, action="backdrop", prompt=body.prompt)


@router.post("/pin", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def pin_visual(body: PinBody, services: ServicesDep) -> CommandAccepted:
    """Hold this visual on screen: no automatic visuals until unpinned."""
    return await _send(services, body, action="pin", visual_id=body.visual_id)


@router.post("/unpin", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def unpin_visual(body: _Body, services: ServicesDep) -> CommandAccepted:
    """Let the stage change by itself again."""
    return await _send(services, body, action="unpin")


@router.post("/layout", response_model=LayoutChosen)
async def set_layout(body: LayoutBody, services: ServicesDep) -> LayoutChosen:
    """Switch the stage layout: `corner` (the host in the lower right, the visual beside it),
    `side` (the host in a column beside the visual), `center` (the host over the visual),
    `visual-only` or `host-only`. The viewer pages and `/stage` follow at once; a page that
    joins later reads it from `GET /api/config`."""
    room = await _room(services, body)
    services.require_bus()
    await services.shows.set_layout(room, body.layout)
    event = StageLayoutEvent(id=new_id(), room=room, layout=body.layout, created_at=now_ms())
    await services.announce_to_pages(subjects.stage_layout(room), event, room)
    return LayoutChosen(room=room, layout=body.layout)
