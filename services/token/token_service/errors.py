"""Error responses: every error names what went wrong; 422s name the field and never echo input."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from livestage.bus import BusUnavailable, PublishUnconfirmed

from .livekit_gateway import LiveKitRefusedCredentials, LiveKitRejected, LiveKitUnavailable
from .models import ErrorItem, ErrorResponse

log = logging.getLogger(__name__)


def unavailable(what: str, retry_after_s: int = 2, cause: str = "") -> HTTPException:
    """A 503 that says which backend is down and when to retry; nothing was done."""
    because = f" ({cause})" if cause else ""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"{what} is unavailable right now{because}; nothing was changed, try again "
        f"in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


def unconfirmed(retry_after_s: int = 2) -> HTTPException:
    """A 503 for a publish JetStream did not confirm in time: it may be stored, so unlike
    `unavailable` it does not claim nothing was changed; a resend is safe because every
    publish carries a de-duplication id (a chat line: its `clientId`)."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail="the message bus did not confirm in time; your request may have been stored, "
        "and sending it again is safe (a chat message resent with the same clientId is shown "
        f"once); try again in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


async def _publish_unconfirmed(request: Request, error: Exception) -> JSONResponse:
    log.warning("%s %s: publish unconfirmed: %s", request.method, request.url.path, error)
    down = unconfirmed()
    return JSONResponse(
        ErrorResponse(detail=str(down.detail)).model_dump(),
        status_code=down.status_code,
        headers=down.headers,
    )


def field_error(field: str, message: str, kind: str = "value_error") -> HTTPException:
    """A 422 in the same shape as request validation errors, for checks done in a handler."""
    item = ErrorItem(loc=["body", field], msg=message, type=kind)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[item.model_dump()])


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    items = [
        ErrorItem(
            loc=[part for part in e.get("loc", ()) if isinstance(part, str | int)],
            msg=str(e.get("msg", "invalid")).removeprefix("Value error, "),
            type=str(e.get("type", "value_error")),
        )
        for e in error.errors()
    ]
    body = ErrorResponse(detail=items)
    return JSONResponse(body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _backend_down(
    what: str, *, explain: bool = False
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """`explain`: our own error messages (no addresses or secrets) may go to the client."""

    async def handler(request: Request, error: Exception) -> JSONResponse:
        log.warning("%s %s: %s unavailable: %s", request.method, request.url.path, what, error)
        down = unavailable(what, cause=str(error) if explain else "")
        return JSONResponse(
            ErrorResponse(detail=str(down.detail)).model_dump(),
            status_code=down.status_code,
            headers=down.headers,
        )

    return handler


def _livekit_not_retryable(
    status_code: int,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A LiveKit answer that a retry cannot fix: say what it was, and no Retry-After."""

    async def handler(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, error)
        return JSONResponse(ErrorResponse(detail=str(error)).model_dump(), status_code=status_code)

    return handler


def install(app: FastAPI) -> None:
    """422s in one shape; a backend that is down is a 503 with Retry-After, never a 500;
    LiveKit refusing our credentials is a 500 that says so (no Retry-After: fix the config)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(BusUnavailable, _backend_down("the message bus"))
    # More specific than BusUnavailable (Starlette picks the handler along the MRO).
    app.add_exception_handler(PublishUnconfirmed, _publish_unconfirmed)
    app.add_exception_handler(RedisError, _backend_down("Redis"))
    app.add_exception_handler(LiveKitUnavailable, _backend_down("LiveKit", explain=True))
    app.add_exception_handler(
        LiveKitRefusedCredentials,
        _livekit_not_retryable(status.HTTP_500_INTERNAL_SERVER_ERROR),
    )
    app.add_exception_handler(LiveKitRejected, _livekit_not_retryable(status.HTTP_502_BAD_GATEWAY))


RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing, forged, expired or other-room token"},
    403: {"model": ErrorResponse, "description": "Banned (the detail says until when)"},
    413: {"model": ErrorResponse, "description": "Request body over the cap; nothing was read"},
    422: {"model": ErrorResponse, "description": "A field broke a rule; `loc` names it"},
    429: {"model": ErrorResponse, "description": "Rate limited; see the Retry-After header"},
    503: {"model": ErrorResponse, "description": "A backend is down; see Retry-After"},
}

UNKNOWN_SHOW: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No show has that name"}
}

LIVEKIT_RESPONSES: dict[int | str, dict[str, object]] = {
    500: {"model": ErrorResponse, "description": "LiveKit refused the edge's credentials"},
    502: {"model": ErrorResponse, "description": "LiveKit refused the request"},
}
