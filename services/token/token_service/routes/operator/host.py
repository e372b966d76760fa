"""Operator control of the speaking host: `/api/operator/host/...` (bearer operator secret).

Each route publishes one `HostCommand` on `host.control.<room>` and answers `202 {id}` once
JetStream stored it (503 + Retry-After while NATS is down). The host job of the room obeys at
once: `pause` stops the current speech and keeps the host quiet (it still speaks `say`),
`resume` lets it talk again, `skip` cuts the current speech, `say` speaks the text verbatim next
(cutting in), `persona` switches to the persona file named `name` in `HOST_PERSONA_DIR`.
A command reaches only a job that is running: nothing is replayed to a later job.
Each acts on the default show's room, or on the show named by the `show` query parameter (404
when no show has that name).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import status
from pydantic import Field, field_validator

from livestage import subjects
from livestage.schemas import MAX_CHAT_CHARS, HostCommand, new_id, now_ms

from ...deps import ServicesDep, ShowRoom
from ...errors import UNKNOWN_SHOW
from ...models import ApiModel, _clean_between
from .auth import operator_router

router = operator_router("/host", ["operator: host"], UNKNOWN_SHOW)

MAX_SAY_CHARS = 2 * MAX_CHAT_CHARS
PERSONA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SayRequest(ApiModel):
    """Words the host speaks verbatim."""

    text: Annotated[str, Field(max_length=4 * MAX_SAY_CHARS), _clean_between(1, MAX_SAY_CHARS)]


class PersonaRequest(ApiModel):
    """The persona to switch to: a file name (without suffix) in the host's persona folder."""

    name: str = Field(max_length=64, description="e.g. `sage` for sage.yaml")

    @field_validator("name")
    @classmethod
    def _persona_name(cls, value: str) -> str:
        if not PERSONA_NAME.fullmatch(value):
            raise ValueError("must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return value


class CommandAccepted(ApiModel):
    id: str


async def _send(
    services: ServicesDep,
    room: str,
    action: Literal["pause", "resume", "say", "skip", "persona"],
    text: str = "",
) -> CommandAccepted:
    command = HostCommand(id=new_id(), room=room, action=action, text=text, created_at=now_ms())
    await services.require_bus().publish(subjects.host_control(room), command)
    return CommandAccepted(id=command.id)


@router.post("/pause", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def pause(services: ServicesDep, room: ShowRoom) -> CommandAccepted:
    """Stop the current speech; the host says nothing on its own until `resume`."""
    return await _send(services, room, "pause")


@router.post("/resume", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def resume(services: ServicesDep, room: ShowRoom) -> CommandAccepted:
    """Let the host answer chat and talk about the screen again."""
    return await _send(services, room, "resume")


@router.post("/skip", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def skip(services: ServicesDep, room: ShowRoom) -> CommandAccepted:
    """Cut the current speech at once."""
    return await _send(services, room, "skip")


@router.post("/say", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def say(request: SayRequest, services: ServicesDep, room: ShowRoom) -> CommandAccepted:
    """Speak `text` verbatim, next, cutting in on the current speech."""
    return await _send(services, room, "say", request.text)


@router.post("/persona", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def persona(
    request: PersonaRequest, services: ServicesDep, room: ShowRoom
) -> CommandAccepted:
    """Switch the host to another persona file (name without suffix)."""
    return await _send(services, room, "persona", request.name)
