"""Console sign-in: `/api/operator/session` trades the operator secret for a session cookie.

The console page sends the secret once; the edge answers with `livestage_operator=<random id>;
HttpOnly; SameSite=Strict; Path=/api/operator; Max-Age=TOKEN_OPERATOR_SESSION_S` (+ `Secure`
over https, the visitor cookie's rule), so the page never keeps the secret, and script on it
cannot read the cookie. Sessions live in Redis (`operator_sessions.py`): every replica accepts
them, and sign-out (`DELETE`) revokes one everywhere. Sign-in attempts, right or wrong, count
against `TOKEN_RATE_OPERATOR_SIGN_IN` per client network. The secret is never logged or echoed.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Cookie, Header, HTTPException, Request, Response, status
from pydantic import Field

from ...deps import ClientNetwork, ServicesDep, secure_cookie
from ...models import ApiModel, ErrorResponse
from .auth import (
    OPERATOR_PREFIX,
    OPERATOR_RESPONSES,
    SAME_ORIGIN_HEADER,
    SESSION_COOKIE,
    configured_secret,
    operator_sessions,
    require_same_origin_header,
    secret_matches,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix=OPERATOR_PREFIX, tags=["operator"])

SessionCookie = Annotated[
    str | None, Cookie(alias=SESSION_COOKIE, description="The console session (HttpOnly).")
]


class SignIn(ApiModel):
    """The operator secret, sent once; the answer is a session cookie."""

    secret: str = Field(max_length=1024, description="LIVESTAGE_OPERATOR_SECRET")


class SessionInfo(ApiModel):
    expires_at: int = Field(description="When the session ends (epoch ms): sign in again then.")


def _signed_out() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="not signed in, or the console session has expired: sign in again",
    )


@router.post(
    "/session",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **OPERATOR_RESPONSES,
        401: {"model": ErrorResponse, "description": "Wrong operator secret"},
        429: {"model": ErrorResponse, "description": "Too many sign-in attempts; Retry-After"},
    },
)
async def sign_in(
    body: SignIn,
    request: Request,
    response: Response,
    services: ServicesDep,
    network: ClientNetwork,
    same_origin: Annotated[
        str | None, Header(alias=SAME_ORIGIN_HEADER, description="Must be `1`.")
    ] = None,
) -> None:
    """Sign the console in with the operator secret: 204 and an HttpOnly session cookie for
    `TOKEN_OPERATOR_SESSION_S`. Needs `X-Livestage-Operator: 1`; attempts per client network
    are limited (`TOKEN_RATE_OPERATOR_SIGN_IN`)."""
    secret = configured_secret(services)
    require_same_origin_header(request, same_origin)
    await services.limiter.check(services.limits.operator_sign_in, network)
    if not secret_matches(body.secret, secret):
        log.info("operator sign-in refused: wrong secret (from %s)", network)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong operator secret")
    session = await operator_sessions(services).create()
    log.info("operator signed in (from %s)", network)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=services.edge.operator_session_s,
        path=OPERATOR_PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, services),
    )


@router.get(
    "/session",
    response_model=SessionInfo,
    response_model_by_alias=True,
    responses={401: OPERATOR_RESPONSES[401], 503: OPERATOR_RESPONSES[503]},
)
async def session_info(services: ServicesDep, session_cookie: SessionCookie = None) -> SessionInfo:
    """200 `{expiresAt}` while the console's session is good, else 401 (the page shows the
    sign-in form)."""
    configured_secret(services)
    session = await operator_sessions(services).get(session_cookie) if session_cookie else None
    if session is None:
        raise _signed_out()
    return SessionInfo(expires_at=session.expires_at_ms)


@router.delete(
    "/session",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: OPERATOR_RESPONSES[403], 503: OPERATOR_RESPONSES[503]},
)
async def sign_out(
    request: Request,
    response: Response,
    services: ServicesDep,
    session_cookie: SessionCookie = None,
    same_origin: Annotated[
        str | None, Header(alias=SAME_ORIGIN_HEADER, description="Must be `1`.")
    ] = None,
) -> None:
    """Sign out: the session is deleted (on every replica) and the cookie cleared. 204 even
    when there was no session."""
    configured_secret(services)
    require_same_origin_header(request, same_origin)
    if session_cookie:
        await operator_sessions(services).revoke(session_cookie)
    response.delete_cookie(
        SESSION_COOKIE,
        path=OPERATOR_PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, services),
    )
