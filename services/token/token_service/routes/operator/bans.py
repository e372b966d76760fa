"""Operator bans (edge side): ban, unban and list visitors of the room.

A ban is stored in Redis first (`livestage.bans.BanStore`: from then on the edge refuses new
tokens and chat from that visitor with a 403 that says until when, across re-mints, and
moderation rejects what is already queued), then announced as a `BanEvent` on
`chat.banned.<room>`, on which chat-history removes the visitor's participants from the LiveKit
room. Unbanning deletes it and announces `chat.unbanned.<room>`.

A visitor is named by a participant identity (`viewer_<visitorTag>_<suffix>`, what the operator
sees in the room or on a message) or directly by the visitor tag. A YouTube or Twitch chat
author is named by their platform identity (`twitch:<user id>`, `youtube:<channel id>`, the
`authorIdentity` of their messages): moderation then rejects their messages, and
`DELETE /bans/twitch:<user id>` lifts it. Livestage never sees a platform user's network, so
`scope: network` for one is a 422.

`scope: network` also bans the network the edge last saw the visitor come from (noted on every
token and chat request for TOKEN_VISITOR_NETWORK_TTL_S): new tokens and chat from that network
are refused whoever asks, until the network part lifts (`durationS`, at most
TOKEN_NETWORK_BAN_MAX_S). A visitor the edge has not seen recently has no network to ban: 422.
The network stays off the bus (the announcement names the visitor only).

Bans are per show: every route acts on the default show's room, or on the show named by the
`show` query parameter (404 when no show has that name).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import HTTPException, Path, Response, status

from livestage import subjects
from livestage.bans import Ban, network_ban_expiry
from livestage.bus import BusUnavailable
from livestage.identity import BAN_KEY_PATTERN, ban_key_of, platform_of
from livestage.schemas import PLATFORM_NAMES, BanEvent, new_id, now_ms

from ...deps import ServicesDep, ShowRoom
from ...errors import UNKNOWN_SHOW, field_error
from ...models import BanInfo, BanList, BanRequest, ErrorResponse
from .auth import operator_router

log = logging.getLogger(__name__)
router = operator_router("/bans", ["operator: bans"], UNKNOWN_SHOW)

BanKeyPath = Annotated[
    str,
    Path(
        pattern=BAN_KEY_PATTERN,
        description="The banned visitor's tag, or a platform chat author's identity "
        "(`twitch:<user id>`, `youtube:<channel id>`).",
    ),
]


def _info(ban: Ban) -> BanInfo:
    return BanInfo(
        # a platform user's ban is keyed on their identity, shown in `identity`
        visitor_tag="" if platform_of(ban.visitor_tag) else ban.visitor_tag,
        identity=ban.identity,
        reason=ban.reason,
        created_at=ban.created_at,
        expires_at=ban.expires_at,
        scope=ban.scope,
        network=ban.network,
        network_expires_at=ban.network_expires_at,
    )


async def _announce(services: ServicesDep, subject: str, event: BanEvent) -> None:
    await services.require_bus().publish(subject, event, timeout_s=services.edge.nats_timeout_s)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BanInfo,
    response_model_by_alias=True,
    responses={
        413: {"model": ErrorResponse, "description": "Body over the cap"},
        503: {"model": ErrorResponse, "description": "Redis or the message bus is down"},
        422: {"model": ErrorResponse, "description": "A field broke a rule; `loc` names it"},
    },
)
async def ban_visitor(body: BanRequest, services: ServicesDep, room: ShowRoom) -> BanInfo:
    """Ban a visitor (by `identity` or `visitorTag`) or a platform chat author (by their
    `identity`, `twitch:<user id>`) for `durationS` seconds, or permanently; with `scope: network`
    a visitor's network too (for `durationS`, at most TOKEN_NETWORK_BAN_MAX_S)."""
    if (body.identity is None) == (body.visitor_tag is None):
        raise field_error("identity", "give exactly one of identity or visitorTag")
    if body.identity is not None:
        tag = ban_key_of(body.identity)
        if tag is None:
            raise field_error(
                "identity",
                "not a viewer identity (viewer_<visitorTag>_<suffix>) nor a platform identity "
                "(twitch:<user id>, youtube:<channel id>)",
            )
    else:
        assert body.visitor_tag is not None
        tag = body.visitor_tag
    network = ""
    if body.scope == "network" and (platform := platform_of(tag)) is not None:
        raise field_error(
            "scope",
            f"{tag} is a {PLATFORM_NAMES[platform[0]]} chat user: Livestage never sees their "
            "network, so only scope visitor bans them",
        )
    if body.scope == "network":
        network = await services.bans.network_of(room, tag) or ""
        if not network:
            raise field_error(
                "scope",
                f"the edge has not seen visitor {tag} in the last "
                f"{services.edge.visitor_network_ttl_s} s, so it knows no network to ban; "
                "ban with scope visitor",
            )
    created = now_ms()
    expires = created + body.duration_s * 1000 if body.duration_s else 0
    ban = Ban(
        visitor_tag=tag,
        identity=body.identity or "",
        reason=body.reason,
        created_at=created,
        expires_at=expires,
        scope=body.scope,
        network=network,
        network_expires_at=network_ban_expiry(created, expires, services.edge.network_ban_max_s)
        if network
        else 0,
    )
    await services.bans.ban(room, ban)
    event = BanEvent(
        id=new_id(),
        room=room,
        visitor_tag=tag,
        identity=ban.identity,
        reason=ban.reason,
        expires_at=ban.expires_at,
        created_at=created,
    )
    try:
        await _announce(services, subjects.chat_banned(room), event)
    except BusUnavailable as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the ban is in force, but the message bus did not take its announcement, so "
            "the visitor may still be in the room; repeat the request (it is idempotent)",
            headers={"Retry-After": "2"},
        ) from error
    return _info(ban)


@router.delete(
    "/{visitor_tag}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorResponse, "description": "That visitor is not banned"}},
)
async def unban_visitor(visitor_tag: BanKeyPath, services: ServicesDep, room: ShowRoom) -> Response:
    """Lift a visitor's (or a platform chat author's) ban, and the network ban that came with
    it."""
    if not await services.bans.unban(room, visitor_tag):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"{visitor_tag} is not banned in this room"
        )
    event = BanEvent(id=new_id(), room=room, visitor_tag=visitor_tag, created_at=now_ms())
    try:
        await _announce(services, subjects.chat_unbanned(room), event)
    except BusUnavailable as error:
        # The ban is gone from Redis, which is what counts; nobody has to act on an unban.
        log.warning("unban of %s not announced: %s", visitor_tag, error)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=BanList, response_model_by_alias=True)
async def list_bans(services: ServicesDep, room: ShowRoom) -> BanList:
    """Every ban in force in this show's room, newest first."""
    return BanList(bans=[_info(ban) for ban in await services.bans.list(room)])
