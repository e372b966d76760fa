"""Who may use the operator routes: the bearer secret (`LIVESTAGE_OPERATOR_SECRET`), or a console
session cookie that a sign-in with that secret made (`session.py`).

Every operator route (chat moderation, host control, stage, the console's events) hangs off
`operator_router()`, whose dependency `require_operator` accepts either:

- `Authorization: Bearer <secret>`, checked in constant time (curl, scripts; unchanged);
- the `livestage_operator` cookie (HttpOnly, SameSite=Strict, Path=/api/operator) naming a live
  session in Redis (`token_service/operator_sessions.py`). A request that changes something
  (POST, PUT, PATCH, DELETE) with the cookie must also carry `X-Livestage-Operator: 1`: a
  cross-site form cannot send a custom header, and a cross-site `fetch` that tries is stopped
  by the browser's preflight (the edge answers no CORS), so the cookie alone never acts.

A bearer header, when present, is judged alone. Without the setting the routes exist but answer
503 "not configured", so a stack started without it exposes nothing.
"""

from __future__ import annotations

import hmac
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Header, HTTPException, Request, status
from pydantic import SecretStr

from ...deps import Services, ServicesDep
from ...models import ErrorResponse
from ...operator_sessions import OperatorSessions

OPERATOR_PREFIX = "/api/operator"
SESSION_COOKIE = "livestage_operator"
SAME_ORIGIN_HEADER = "X-Livestage-Operator"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

OPERATOR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong operator secret or session"},
    403: {
        "model": ErrorResponse,
        "description": f"A session cookie on a state-changing request without "
        f"`{SAME_ORIGIN_HEADER}: 1`",
    },
    503: {
        "model": ErrorResponse,
        "description": "Operator routes not configured, or a backend is down (see Retry-After)",
    },
}


def configured_secret(services: Services) -> SecretStr:
    """The operator secret, or 503 saying how to turn the operator routes on."""
    secret = services.operator.operator_secret
    if secret is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="operator routes are not configured: set LIVESTAGE_OPERATOR_SECRET on the edge",
        )
    return secret


def secret_matches(presented: str, secret: SecretStr) -> bool:
    return hmac.compare_digest(presented.encode(), secret.get_secret_value().encode())


def require_same_origin_header(request: Request, value: str | None) -> None:
    """403 unless a state-changing request carries `X-Livestage-Operator: 1`."""
    if request.method not in SAFE_METHODS and value != "1":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"a console request that changes something must carry the header "
            f"'{SAME_ORIGIN_HEADER}: 1' (sent by the operator page; a cross-site form cannot)",
        )


def operator_sessions(services: Services) -> OperatorSessions:
    return OperatorSessions(services.redis, services.livekit.room, services.edge.operator_session_s)


async def require_operator(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[
        str | None, Header(description="Bearer <LIVESTAGE_OPERATOR_SECRET>")
    ] = None,
    session_cookie: Annotated[
        str | None,
        Cookie(
            alias=SESSION_COOKIE,
            description="The console session (HttpOnly; set by POST /api/operator/session).",
        ),
    ] = None,
    same_origin: Annotated[
        str | None,
        Header(
            alias=SAME_ORIGIN_HEADER,
            description="`1`: required with the session cookie on POST, PUT, PATCH, DELETE.",
        ),
    ] = None,
) -> None:
    secret = configured_secret(services)
    if authorization is None and session_cookie:
        if await operator_sessions(services).get(session_cookie) is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="the console session has expired or was signed out: sign in again",
                headers={"WWW-Authenticate": "Bearer"},
            )
        require_same_origin_header(request, same_origin)
        return
    presented = ""
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not secret_matches(presented, secret):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong operator secret ('Authorization: Bearer <secret>') "
            "or console session",
            headers={"WWW-Authenticate": "Bearer"},
        )


def operator_router(
    prefix: str = "",
    tags: list[str] | None = None,
    responses: dict[int | str, dict[str, object]] | None = None,
) -> APIRouter:
    """A router under /api/operator<prefix> whose every route requires the operator;
    `responses`: more that every route may answer (e.g. 404 for an unknown show)."""
    return APIRouter(
        prefix=OPERATOR_PREFIX + prefix,
        tags=list[str | Enum](tags or ["operator"]),
        dependencies=[Depends(require_operator)],
        responses=OPERATOR_RESPONSES | (responses or {}),
    )


router = operator_router()


@router.get("/check", status_code=status.HTTP_204_NO_CONTENT)
async def check_operator_secret() -> None:
    """204 when the operator secret (or console session) is right: lets an operator test
    their setup."""
