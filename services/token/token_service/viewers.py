"""Viewer tokens: minting them for a profile and verifying them on every chat or history call."""

from __future__ import annotations

import datetime
import json
import secrets
from dataclasses import dataclass

import jwt
from livekit import api

from livestage.schemas import MAX_NAME_CHARS
from livestage.text import clean_text

VIEWER_PREFIX = "viewer_"


class ViewerAuthError(Exception):
    """The bearer token is not a valid viewer token for this room; the message says why."""


@dataclass(frozen=True)
class Viewer:
    identity: str
    name: str
    avatar: str
    visitor_id: str


def new_identity(visitor_id: str) -> str:
    return f"{VIEWER_PREFIX}{visitor_id}_{secrets.token_hex(4)}"


def mint_viewer_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    name: str,
    avatar: str,
    visitor_id: str,
    ttl: datetime.timedelta,
) -> str:
    """A token that may join `room` and subscribe, and may publish nothing at all."""
    metadata = json.dumps({"avatar": avatar, "role": "viewer", "visitorId": visitor_id})
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_metadata(metadata)
        .with_ttl(ttl)
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_subscribe=True,
                can_publish=False,
                can_publish_data=False,
            )
        )
        .to_jwt()
    )


def verify_viewer_token(token: str, *, api_key: str, api_secret: str, room: str) -> Viewer:
    """Check signature, expiry, room and role; return who the viewer is."""
    verifier = api.TokenVerifier(api_key, api_secret, leeway=datetime.timedelta(seconds=5))
    try:
        claims = verifier.verify(token)
    except jwt.ExpiredSignatureError as error:
        raise ViewerAuthError("token expired: ask for a new one at /api/livekit-token") from error
    except jwt.PyJWTError as error:
        raise ViewerAuthError(f"token rejected: {error}") from error
    video = claims.video
    if video is None or not video.room_join or video.room != room:
        raise ViewerAuthError("token is not for this room")
    if not claims.identity.startswith(VIEWER_PREFIX):
        raise ViewerAuthError("token is not a viewer token")
    try:
        metadata = json.loads(claims.metadata or "{}")
    except json.JSONDecodeError as error:
        raise ViewerAuthError("token metadata is not JSON") from error
    if not isinstance(metadata, dict) or metadata.get("role") != "viewer":
        raise ViewerAuthError("token is not a viewer token")
    name = clean_text(claims.name or "")[:MAX_NAME_CHARS] or "viewer"
    return Viewer(
        identity=claims.identity,
        name=name,
        avatar=str(metadata.get("avatar", "")),
        visitor_id=str(metadata.get("visitorId", "")),
    )
