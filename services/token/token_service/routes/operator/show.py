"""End and start the show: `/api/operator/show` (operator).

`POST /end` (optional body `{"reason": "..."}`, the operator's note, up to 300 visible
characters) records the room's show as ended in Redis (`livestage.shows.ShowStore`, which every
edge replica, the host agent and the stage producer read), publishes a `ShowEvent` on
`room.show.<room>` (the host job ends with reason `operator`, closing its paid sessions; the
stage producer stops making visuals for the room) and sends the same event to the room's pages
on the stage data topic (they show "The show has ended"). While ended, viewers still get tokens
and chat keeps working, but no host is dispatched (`dispatch/dispatcher.py`). `POST /start`
does the reverse and has the reconciler look at the room at once, so a host comes back while
viewers are there. `GET` answers the show as it is. All three answer
`{room, state, reason, updatedAt}`, and act on the default show (LIVEKIT_ROOM) or the one named
by the `show` query parameter (404 when no show has that name). `/api/operator/shows/{room}/end`
and `/start` (`shows.py`) do the same through `end_show_in` and `start_show_in`.

The record is written before the event: a reader that starts late consults the record, a running
one follows the event. The bus is checked first, so a 503 for a down NATS means nothing changed;
a LiveKit that does not answer only delays the pages (they read `showState` from `/api/config`
when they load), so it is logged, not an error.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Body
from pydantic import Field

from livestage import subjects
from livestage.schemas import ShowEvent, ShowState, new_id, now_ms
from livestage.shows import Show

from ...deps import Services, ServicesDep, ShowRoom
from ...dispatch.schedule import Trigger
from ...errors import UNKNOWN_SHOW
from ...models import ApiModel, _clean_between
from .auth import operator_router

log = logging.getLogger(__name__)
router = operator_router("/show", ["operator: show"], UNKNOWN_SHOW)

MAX_REASON_CHARS = 300


class EndShowRequest(ApiModel):
    reason: Annotated[
        str,
        Field(max_length=4 * MAX_REASON_CHARS, description="A note for the record, e.g. why."),
        _clean_between(0, MAX_REASON_CHARS),
    ] = ""


class ShowResponse(ApiModel):
    room: str
    state: ShowState
    reason: str = Field(description="The operator's note when the show was ended.")
    updated_at: int = Field(description="When it last changed (epoch ms; 0: never).")


def _answer(show: Show) -> ShowResponse:
    return ShowResponse(
        room=show.room, state=show.state, reason=show.reason, updated_at=show.updated_at
    )


async def _announce(services: Services, show: Show) -> None:
    event = ShowEvent(
        id=new_id(), room=show.room, state=show.state, reason=show.reason, created_at=now_ms()
    )
    await services.announce_to_pages(subjects.room_show(show.room), event, show.room)


async def end_show_in(services: Services, room: str, reason: str) -> Show:
    """Record `room`'s show as ended, then tell NATS and the pages (503 first if NATS is down)."""
    services.require_bus()
    show = await services.shows.end(room, reason=reason)
    log.info("room %s: the operator ended the show", room)
    await _announce(services, show)
    return show


async def start_show_in(services: Services, room: str) -> Show:
    """Record `room`'s show as live, tell NATS and the pages, and look for its host at once."""
    services.require_bus()
    show = await services.shows.start(room)
    log.info("room %s: the operator started the show", room)
    await _announce(services, show)
    await services.host_cache_for(room).forget()
    services.reconciler.wake(room, Trigger.SHOW_STARTED)
    return show


@router.get("", response_model=ShowResponse, response_model_by_alias=True)
async def show_state(services: ServicesDep, room: ShowRoom) -> ShowResponse:
    """Whether the show is live or ended, and since when."""
    return _answer(await services.shows.get(room))


@router.post("/end", response_model=ShowResponse, response_model_by_alias=True)
async def end_show(
    services: ServicesDep,
    room: ShowRoom,
    request: Annotated[EndShowRequest | None, Body()] = None,
) -> ShowResponse:
    """End the show: the host job ends (closing every paid session), the stage stops, the pages
    say the show has ended, and no host is dispatched until `start`. Ending an ended show
    sends the event again (harmless)."""
    return _answer(await end_show_in(services, room, request.reason if request else ""))


@router.post("/start", response_model=ShowResponse, response_model_by_alias=True)
async def start_show(services: ServicesDep, room: ShowRoom) -> ShowResponse:
    """Start the show again: hosts are dispatched again (at once while viewers are in the
    room), the stage resumes, and the pages leave the ended state."""
    return _answer(await start_show_in(services, room))
