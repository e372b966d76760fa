"""Operator routes for the stage (`/api/operator/stage/...`, operator bearer secret).

Each route publishes one `StageCommand` on `stage.command.<room>` and answers 202 with its id
once JetStream stored it (503 when the bus is down); the stage producer carries it out and
publishes the visual as usual. A URL is checked here only for its shape (http or https); the
stage producer's egress policy decides whether it may be reached, and logs why not.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from livestage import subjects
from livestage.schemas import StageCommand, new_id, now_ms
from livestage.text import clean_text

from ...deps import ServicesDep
from .auth import operator_router

router = operator_router("/stage", ["operator: stage"])

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
        description="Room to act on; default: the edge's room (LIVEKIT_ROOM).",
    )


class CaptureBody(_Body):
    url: Annotated[str, Field(max_length=2048), AfterValidator(_url)]
    kind: Literal["screenshot", "clip"] = "screenshot"


class BackdropBody(_Body):
    prompt: Annotated[str, Field(max_length=1200), AfterValidator(_prompt)]


class PinBody(_Body):
    visual_id: str = Field(pattern=VISUAL_ID.pattern, description="The StageVisual's id.")


class CommandAccepted(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    id: str
    room: str
    action: str


async def _send(services: ServicesDep, body: _Body, **fields: str) -> CommandAccepted:
    room = body.room or services.livekit.room
    command = StageCommand(id=new_id(), room=room, created_at=now_ms(), **fields)  # type: ignore[arg-type]
    await services.require_bus().publish(subjects.stage_command(room), command)
    return CommandAccepted(id=command.id, room=room, action=command.action)


@router.post("/capture", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def capture_now(body: CaptureBody, services: ServicesDep) -> CommandAccepted:
    """Capture this URL now (screenshot or scrolling clip) and put it on screen."""
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
