"""The operator's side of the edge: one bearer secret (`LIVESTAGE_OPERATOR_SECRET`) guards it all.

Every operator route (chat moderation, host control, stage) hangs off `operator_router()`, whose
dependency checks `Authorization: Bearer <secret>` in constant time. Without the setting the
routes exist but answer 503 "not configured", so a stack started without it exposes nothing.
"""

from __future__ import annotations

import hmac
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, status

from ...deps import ServicesDep
from ...models import ErrorResponse

OPERATOR_PREFIX = "/api/operator"

OPERATOR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong operator secret"},
    503: {
        "model": ErrorResponse,
        "description": "Operator routes not configured, or a backend is down (see Retry-After)",
    },
}


def require_operator(
    services: ServicesDep,
    authorization: Annotated[
        str | None, Header(description="Bearer <LIVESTAGE_OPERATOR_SECRET>")
    ] = None,
) -> None:
    secret = services.operator.operator_secret
    if secret is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="operator routes are not configured: set LIVESTAGE_OPERATOR_SECRET on the edge",
        )
    presented = ""
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not hmac.compare_digest(presented.encode(), secret.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong operator secret ('Authorization: Bearer <secret>')",
            headers={"WWW-Authenticate": "Bearer"},
        )


def operator_router(prefix: str = "", tags: list[str] | None = None) -> APIRouter:
    """A router under /api/operator<prefix> whose every route requires the operator secret."""
    return APIRouter(
        prefix=OPERATOR_PREFIX + prefix,
        tags=list[str | Enum](tags or ["operator"]),
        dependencies=[Depends(require_operator)],
        responses=OPERATOR_RESPONSES,
    )


router = operator_router()


@router.get("/check", status_code=status.HTTP_204_NO_CONTENT)
async def check_operator_secret() -> None:
    """204 when the operator secret is right: lets an operator test their setup."""
