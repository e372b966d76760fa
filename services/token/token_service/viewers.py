"""Viewer tokens: minting them for a profile and verifying them on every chat or history call.

A token's identity is `viewer_<visitorTag>_<8 hex>` (`livestage.identity`); its metadata holds
only what other participants may see: `role` (`viewer`, or `stage` for the subscribe-only OBS
page, which chat refuses) and `avatar`. The visitor id stays on the edge (see `visitors.py`).
The console's preview gets `preview_<visitorTag>_<8 hex>` and role `preview`: it watches but is
no audience (nothing counts it as a viewer) and is no viewer token (chat refuses it).

`ViewerTokens` is what the edge verifies with on every chat POST: a page sends the same token
with each message, so each edge worker remembers the tokens whose signature it checked (a
bounded LRU keyed by the whole token, `TOKEN_VERIFIED_TOKENS`) and on a hit checks only the
expiry and the room again. A bad signature or an expired token is never remembered: it costs a
full check every time, as before.
"""

from __future__ import annotations

import datetime
import functools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import jwt
from livekit import api

from livestage.identity import preview_identity, viewer_identity, visitor_tag_of
from livestage.schemas import MAX_NAME_CHARS
from livestage.subjects import ROOM_NAME_PATTERN
from livestage.text import clean_text

Role = Literal["viewer", "stage"]
ROLES: tuple[Role, ...] = ("viewer", "stage")
TokenRole = Literal[Role, "preview"]
"""What a token may be minted for: a viewer's roles, or the console's preview."""


LEEWAY = datetime.timedelta(seconds=5)
"""Clock skew allowed on a token's expiry (and not-before)."""
EXPIRED = "token expired: ask for a new one at /api/livekit-token"
NOT_THIS_ROOM = "token is not for this room"


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


def new_identity(visitor_tag: str, role: TokenRole = "viewer") -> str:
    """A fresh identity for a token of `role` (a preview is not a viewer identity)."""
    mint = preview_identity if role == "preview" else viewer_identity
    return mint(visitor_tag, secrets.token_hex(4))


def mint_viewer_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    name: str,
    avatar: str,
    role: TokenRole,
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


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature passed: the room it joins, until when, and its viewer (or why it
    is not a viewer token)."""

    room: str | None
    """The room it may join (None: it grants no room join)."""
    expires_at: float
    """Its `exp`, epoch seconds."""
    viewer: Viewer | None
    refusal: str = ""
    """Why it is not a viewer token, when `viewer` is None."""


def checked(verified: VerifiedToken, room: str | None, now: float) -> Viewer:
    """The viewer of a token verified earlier, if it is still valid at `now` for `room` (None:
    for the room its grant names, whichever; the caller checks that show exists)."""
    if verified.expires_at + LEEWAY.total_seconds() <= now:
        raise ViewerAuthError(EXPIRED)
    if room is not None and verified.room != room:
        raise ViewerAuthError(NOT_THIS_ROOM)
    if verified.viewer is None:
        raise ViewerAuthError(verified.refusal)
    return verified.viewer


def verified_token(token: str, *, api_key: str, api_secret: str) -> VerifiedToken:
    """Check the signature and expiry, and read the room, identity and role."""
    verifier = api.TokenVerifier(api_key, api_secret, leeway=LEEWAY)
    try:
        claims = verifier.verify(token)
        # verified above, and `exp` is required: read it without a second signature check
        expires_at = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    except jwt.ExpiredSignatureError as error:
        raise ViewerAuthError(EXPIRED) from error
    except jwt.PyJWTError as error:
        raise ViewerAuthError(f"token rejected: {error}") from error
    video = claims.video
    joins = video.room if video is not None and video.room_join else None

    def refused(why: str) -> VerifiedToken:
        return VerifiedToken(room=joins, expires_at=expires_at, viewer=None, refusal=why)

    if joins is None or not ROOM_NAME_PATTERN.fullmatch(joins):
        return refused("token joins no room")
    visitor_tag = visitor_tag_of(claims.identity)
    if visitor_tag is None:
        return refused(
            "token is not a viewer token (or from an older edge): ask for a new one at "
            "/api/livekit-token"
        )
    try:
        metadata = json.loads(claims.metadata or "{}")
    except json.JSONDecodeError:
        return refused("token metadata is not JSON")
    role = metadata.get("role") if isinstance(metadata, dict) else None
    if role not in ROLES:
        return refused("token is not a viewer token")
    # cleaned again after the cut: a name minted elsewhere can be cut to end in a space, which
    # no chat line may carry (every chat POST of its token would fail)
    name = clean_text(clean_text(claims.name or "")[:MAX_NAME_CHARS]) or "viewer"
    viewer = Viewer(
        room=joins,
        identity=claims.identity,
        name=name,
        avatar=str(metadata.get("avatar", "")),
        role=role,
        visitor_tag=visitor_tag,
    )
    return VerifiedToken(room=joins, expires_at=expires_at, viewer=viewer)


class ViewerTokens:
    """Verifies viewer tokens, remembering up to `cache_size` verified ones (least recently used
    go first); `cache_size` 0 verifies every time."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        cache_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        def verify(token: str) -> VerifiedToken:
            return verified_token(token, api_key=api_key, api_secret=api_secret)

        # an exception is never cached by lru_cache: only tokens that passed are remembered
        self._verified: Callable[[str], VerifiedToken] = (
            functools.lru_cache(maxsize=cache_size)(verify) if cache_size else verify
        )
        self._clock = clock

    def verify(self, token: str, *, room: str | None = None) -> Viewer:
        """Who the token's viewer is and in which room (`room`: only for that one; None: the
        caller checks the token's room is a show); `ViewerAuthError` says why not."""
        return checked(self._verified(token), room, self._clock())

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the remembered tokens (all zero with `cache_size` 0)."""
        info = getattr(self._verified, "cache_info", None)
        return info() if info is not None else functools._CacheInfo(0, 0, 0, 0)
