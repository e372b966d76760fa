"""Viewer tokens: minting them for a profile and verifying them on every chat or history call.

A token's identity is `viewer_<visitorTag>_<8 hex>` (`livestage.identity`); its metadata holds
only what other participants may see: `role` (`viewer`, or `stage` for the subscribe-only OBS
page, which chat refuses) and `avatar`. The visitor id stays on the edge (see `visitors.py`).
"""

from __future__ import annotations

import datetime
import json
import secrets
from dataclasses import dataclass
from typing import Literal

import jwt
from livekit import api

from livestage.identity import viewer_identity, visitor_tag_of
from livestage.schemas import MAX_NAME_CHARS
from livestage.subjects import ROOM_NAME_PATTERN
from livestage.text import clean_text

Role = Literal["viewer", "stage"]
ROLES: tuple[Role, ...] = ("viewer", "stage")


class ViewerAuthError(Exception):
    """The bearer token is not a valid viewer token for this room; the message says why."""


@dataclass(frozen=True)
class Viewer:
    room: str  # the room (show) the token's grant joins
    identity: str
    name: str
    avatar: str
    role: Role
    visitor_tag: str


def new_identity(visitor_tag: str) -> str:
    return viewer_identity(visitor_tag, secrets.token_hex(4))


def mint_viewer_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    name: str,
    avatar: str,
    role: Role,
    ttl: datetime.timedelta,
) -> str:
    """A token that may join `room` and subscribe, and may publish nothing at all."""
    metadata = json.dumps({"avatar": avatar, "role": role})
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


def verify_viewer_token(
    token: str, *, api_key: str, api_secret: str, room: str | None = None
) -> Viewer:
    """Check signature, expiry, room (`room`, or any valid room name when None: the caller
    checks the show exists), identity and role; return who the viewer is and where."""
    verifier = api.TokenVerifier(api_key, api_secret, leeway=datetime.timedelta(seconds=5))
    try:
        claims = verifier.verify(token)
    except jwt.ExpiredSignatureError as error:
        raise ViewerAuthError("token expired: ask for a new one at /api/livekit-token") from error
    except jwt.PyJWTError as error:
        raise ViewerAuthError(f"token rejected: {error}") from error
    video = claims.video
    if video is None or not video.room_join or not ROOM_NAME_PATTERN.fullmatch(video.room or ""):
        raise ViewerAuthError("token joins no room")
    if room is not None and video.room != room:
        raise ViewerAuthError("token is not for this room")
    visitor_tag = visitor_tag_of(claims.identity)
    if visitor_tag is None:
        raise ViewerAuthError(
            "token is not a viewer token (or from an older edge): ask for a new one at "
            "/api/livekit-token"
        )
    try:
        metadata = json.loads(claims.metadata or "{}")
    except json.JSONDecodeError as error:
        raise ViewerAuthError("token metadata is not JSON") from error
    role = metadata.get("role") if isinstance(metadata, dict) else None
    if role not in ROLES:
        raise ViewerAuthError("token is not a viewer token")
    name = clean_text(claims.name or "")[:MAX_NAME_CHARS] or "viewer"
    return Viewer(
        room=video.room,
        identity=claims.identity,
        name=name,
        avatar=str(metadata.get("avatar", "")),
        role=role,
        visitor_tag=visitor_tag,
    )
