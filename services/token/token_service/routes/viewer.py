"""Viewer tokens (and the host dispatch that comes with them) and the public page config."""

from __future__ import annotations

import datetime
import logging
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, HTTPException, Request, Response, status
from redis.exceptions import RedisError

from livestage import metrics
from livestage.identity import AVATAR_IDENTITIES
from livestage.shows import Show, default_config

from ..deps import (
    ClientNetwork,
    ServicesDep,
    ShowRoom,
    limit_token_network,
    refuse_banned,
    secure_cookie,
)
from ..dispatch.dispatcher import ensure_host
from ..errors import LIVEKIT_RESPONSES, RESPONSES, UNKNOWN_SHOW, field_error
from ..models import PublicConfig, TokenRequest, TokenResponse
from ..viewers import mint_viewer_token, new_identity
from ..visitors import COOKIE_NAME, COOKIE_PATH

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["viewer"])


@router.get(
    "/config",
    response_model=PublicConfig,
    response_model_by_alias=True,
    responses=UNKNOWN_SHOW,
)
async def public_config(services: ServicesDep, room: ShowRoom) -> PublicConfig:
    """What the viewer and stage pages need to know about a show (nothing secret). For the
    default show, the title, layout and show state fall back to their defaults while Redis is
    away: `/` must still load. Another show needs Redis to be known (503 without it)."""
    try:
        config = await services.shows.config(room)
        state = await services.shows.get(room)
    except RedisError as error:
        if room != services.livekit.room:
            raise
        log.warning("config: show unavailable (%r); serving defaults", error)
        config, state = default_config(room), Show(room=room)
    if config is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no show named {room!r}")
    return PublicConfig(
        layout=state.layout,
        show_state=state.state,
        room_name=room,
        title=config.title,
        avatars=services.edge.avatars,
        chat_topic=services.topics.chat_topic,
        stage_topic=services.topics.stage_topic,
        avatar_identities=list(AVATAR_IDENTITIES),
    )


@router.post(
    "/livekit-token",
    response_model=TokenResponse,
    response_model_by_alias=True,
    responses=RESPONSES | LIVEKIT_RESPONSES | UNKNOWN_SHOW,
    dependencies=[Depends(limit_token_network)],
)
async def create_viewer_token(
    body: TokenRequest,
    request: Request,
    response: Response,
    services: ServicesDep,
    network: ClientNetwork,
    visitor_cookie: Annotated[
        str | None,
        Cookie(
            alias=COOKIE_NAME,
            description="The edge's signed visitor id (HttpOnly; set by this route).",
        ),
    ] = None,
) -> TokenResponse:
    """Mint a subscribe-only token for the show's room (`show`; default: the default show;
    404 when no show has that name; `role`: viewer, stage for the OBS page, or preview for the
    console's preview) and make sure one host agent is in the room (not for a preview: it is
    no audience). The visitor is the one in the `livestage_visitor` cookie,
    or a new one (the answer sets the cookie); a banned visitor, or anyone from a banned
    network, gets 403 (bans are per show). A display name that the chat's offline content
    checks refuse, or that impersonates the host or the show's staff (`TOKEN_RESERVED_NAMES`),
    gets 422 with the reason (see token_service/names.py)."""
    if body.avatar not in services.edge.avatars:
        raise field_error("avatar", f"must be one of: {', '.join(services.edge.avatars)}")
    problem = services.names.check(body.display_name)
    if problem is not None:
        log.info("display name refused (%s)", problem.check)  # the reason, never the name
        metrics.counter(metrics.NAMES_REFUSED).add(1, {"check": problem.check})
        raise field_error("displayName", problem.reason, problem.error_type)
    room = await services.require_show(body.show or services.livekit.room)
    visitor = services.visitors.resolve(visitor_cookie)
    await refuse_banned(services, room, visitor.tag, network, "new tokens", new_visitor=visitor.new)
    await services.limiter.check(services.limits.token_per_visitor, visitor.tag)

    identity = new_identity(visitor.tag, body.role)
    token = mint_viewer_token(
        api_key=services.livekit.api_key,
        api_secret=services.api_secret,
        room=room,
        identity=identity,
        name=body.display_name,
        avatar=body.avatar,
        role=body.role,
        ttl=datetime.timedelta(seconds=services.edge.token_ttl_s),
    )
    if body.role == "preview":  # no audience: it must not bring (or keep) a host
        log.debug("preview %s joins", identity)
    else:
        state = await ensure_host(
            services.gateway,
            services.host_cache_for(room),
            policy=services.host_policy,
            metadata=services.dispatch_metadata,
            lock_s=services.edge.dispatch_lock_s,
            workers=services.workers,
        )
        log.debug("%s %s joins; host %s", body.role, identity, state.value)
    response.set_cookie(
        COOKIE_NAME,
        services.visitors.cookie_value(visitor.id),
        max_age=services.edge.visitor_cookie_max_age_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, services),
    )
    return TokenResponse(
        token=token,
        url=services.livekit.url,
        room_name=room,
        agent_name=services.livekit.agent_name,
        identity=identity,
    )
