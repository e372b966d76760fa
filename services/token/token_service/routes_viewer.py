"""Viewer tokens (and the host dispatch that comes with them) and the public page config."""

from __future__ import annotations

import datetime
import logging

from fastapi import APIRouter, Depends

from livestage.identity import AVATAR_IDENTITIES

from .deps import ServicesDep, limit_token_ip
from .dispatch import ensure_host
from .errors import RESPONSES, field_error
from .models import PublicConfig, TokenRequest, TokenResponse
from .viewers import mint_viewer_token, new_identity

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["viewer"])


@router.get("/config", response_model=PublicConfig, response_model_by_alias=True)
async def public_config(services: ServicesDep) -> PublicConfig:
    """What the viewer and stage pages need to know (nothing secret)."""
    return PublicConfig(
        room_name=services.livekit.room,
        avatars=services.edge.avatars,
        chat_topic=services.topics.chat_topic,
        stage_topic=services.topics.stage_topic,
        avatar_identities=list(AVATAR_IDENTITIES),
    )


@router.post(
    "/livekit-token",
    response_model=TokenResponse,
    response_model_by_alias=True,
    responses=RESPONSES,
    dependencies=[Depends(limit_token_ip)],
)
async def create_viewer_token(request: TokenRequest, services: ServicesDep) -> TokenResponse:
    """Mint a subscribe-only viewer token and make sure one host agent is in the room."""
    if request.avatar not in services.edge.avatars:
        raise field_error("avatar", f"must be one of: {', '.join(services.edge.avatars)}")
    visitor_id = request.visitor_id or ""
    await services.limiter.check(services.limits.token_per_visitor, visitor_id)

    identity = new_identity(visitor_id)
    token = mint_viewer_token(
        api_key=services.livekit.api_key,
        api_secret=services.api_secret,
        room=services.livekit.room,
        identity=identity,
        name=request.display_name,
        avatar=request.avatar,
        visitor_id=visitor_id,
        ttl=datetime.timedelta(seconds=services.edge.token_ttl_s),
    )
    state = await ensure_host(
        services.require_lkapi(),
        services.redis,
        room=services.livekit.room,
        agent_name=services.livekit.agent_name,
        metadata=services.dispatch_metadata,
        lock_s=services.edge.dispatch_lock_s,
    )
    log.debug("viewer %s joins; host %s", identity, state.value)
    return TokenResponse(
        token=token,
        url=services.livekit.url,
        room_name=services.livekit.room,
        agent_name=services.livekit.agent_name,
        identity=identity,
    )
