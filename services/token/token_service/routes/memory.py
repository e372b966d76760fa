"""What the host remembers about a viewer, and forgetting it (issue #21's privacy side).

The viewer's own (`/api/me/memory`, the visitor in the HttpOnly `livestage_visitor` cookie):

- `GET` answers their memory card (`card`; null when nothing is remembered, the browser has no
  visitor cookie yet, or MEMORY_ENABLED is false), whether memory is on, and the retention.
- `DELETE` ("Forget me") erases the card, their lines in every show's chat history (removed
  from every page live) and every other Redis key named after them; bans stay (see
  `forgetting.py`). It works whatever MEMORY_ENABLED says: a viewer can always be forgotten.
  It must carry `X-Livestage-Viewer: 1` (the page sends it; a cross-site form cannot), besides
  the cookie being SameSite=Strict; without a cookie there is nothing to forget (zeros).

Both are rate limited per client network only (a read as a history read, "Forget me" as a
token request), so neither leaves a key named after the visitor behind.

The operator's (`/api/operator/viewers/{key}/memory`, key = a visitor tag or
`<platform>:<user id>`, as bans name them; 422 for anything else): the same reads and erases.
The operator's `GET` answers the stored card even while MEMORY_ENABLED is false.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Header, HTTPException, Path, status

from livestage.identity import BAN_KEY_PATTERN
from livestage.memory import MemoryCard

from ..deps import ClientNetwork, Services, ServicesDep, limit_token_network
from ..errors import RESPONSES
from ..forgetting import Erasure, forget_viewer
from ..models import ApiModel, ErrorResponse
from ..visitors import COOKIE_NAME
from .operator.auth import operator_router

VIEWER_HEADER = "X-Livestage-Viewer"

router = APIRouter(prefix="/api/me", tags=["viewer: memory"])
operator = operator_router("/viewers", ["operator: memory"])

VisitorCookie = Annotated[
    str | None,
    Cookie(
        alias=COOKIE_NAME,
        description="The edge's signed visitor id (HttpOnly; set by POST /api/livekit-token).",
    ),
]
MemoryKeyPath = Annotated[
    str,
    Path(
        pattern=BAN_KEY_PATTERN,
        description="A visitor tag, or a platform chat author's identity "
        "(`twitch:<user id>`, `youtube:<channel id>`).",
    ),
]


class MemoryAnswer(ApiModel):
    """A viewer's memory card (null: nothing remembered), and how memory is kept."""

    card: MemoryCard | None
    enabled: bool
    retention_days: int


class ErasureAnswer(ApiModel):
    """What forgetting did: when, how many chat lines were removed, how many keys deleted."""

    erased_at: int
    messages_removed: int
    keys_deleted: int


async def limit_memory_read(network: ClientNetwork, services: ServicesDep) -> None:
    """A card read costs what a history read does: it counts against the network's history
    reads (TOKEN_RATE_HISTORY_PER_NETWORK), never a per-visitor bucket (a key named after the
    visitor, which "Forget me" has just erased)."""
    await services.limiter.check(services.limits.history_per_network, network)


def _answer(services: Services, card: MemoryCard | None) -> MemoryAnswer:
    return MemoryAnswer(
        card=card, enabled=services.memory.enabled, retention_days=services.memory.retention_days
    )


def _erasure(done: Erasure) -> ErasureAnswer:
    return ErasureAnswer(
        erased_at=done.erased_at,
        messages_removed=done.messages_removed,
        keys_deleted=done.keys_deleted,
    )


def _visitor_tag(services: Services, cookie: str | None) -> str | None:
    visitor_id = services.visitors.from_cookie(cookie)
    return None if visitor_id is None else services.visitors.tag(visitor_id)


@router.get(
    "/memory",
    response_model=MemoryAnswer,
    response_model_by_alias=True,
    responses=RESPONSES,
    dependencies=[Depends(limit_memory_read)],
)
async def my_memory(services: ServicesDep, visitor_cookie: VisitorCookie = None) -> MemoryAnswer:
    """What the host remembers about the visitor of this browser (`card` null: nothing)."""
    tag = _visitor_tag(services, visitor_cookie)
    if tag is None or not services.memory.enabled:
        return _answer(services, None)
    return _answer(services, await services.memories.card(tag))


@router.delete(
    "/memory",
    response_model=ErasureAnswer,
    response_model_by_alias=True,
    responses=RESPONSES
    | {403: {"model": ErrorResponse, "description": f"Without `{VIEWER_HEADER}: 1`"}},
    dependencies=[Depends(limit_token_network)],
)
async def forget_me(
    services: ServicesDep,
    visitor_cookie: VisitorCookie = None,
    same_origin: Annotated[
        str | None, Header(alias=VIEWER_HEADER, description="Must be `1` (sent by the page).")
    ] = None,
) -> ErasureAnswer:
    """Forget me: erase the visitor's memory card, their chat lines in every show and every
    Redis key named after them (bans stay)."""
    if same_origin != "1":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"'Forget me' must carry the header '{VIEWER_HEADER}: 1' "
            "(sent by the viewer page; a cross-site form cannot)",
        )
    tag = _visitor_tag(services, visitor_cookie)
    if tag is None:  # no visitor: nothing was ever kept about this browser
        return ErasureAnswer(erased_at=0, messages_removed=0, keys_deleted=0)
    return _erasure(await forget_viewer(services, tag))


@operator.get("/{key}/memory", response_model=MemoryAnswer, response_model_by_alias=True)
async def viewer_memory(key: MemoryKeyPath, services: ServicesDep) -> MemoryAnswer:
    """A viewer's memory card (null: nothing remembered), stored cards even with memory off."""
    return _answer(services, await services.memories.card(key))


@operator.delete("/{key}/memory", response_model=ErasureAnswer, response_model_by_alias=True)
async def erase_viewer(key: MemoryKeyPath, services: ServicesDep) -> ErasureAnswer:
    """Erase a viewer as their "Forget me" does: memory card, chat lines, keys (bans stay)."""
    return _erasure(await forget_viewer(services, key))
