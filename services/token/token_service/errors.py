"""Error responses: every error names what went wrong; 422s name the field and never echo input."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from livekit.api import TwirpError
from redis.exceptions import RedisError

from livestage.bus import BusUnavailable

from .models import ErrorItem, ErrorResponse

log = logging.getLogger(__name__)


def unavailable(what: str, retry_after_s: int = 2) -> HTTPException:
    """A 503 that says which backend is down and when to retry; nothing was done."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"{what} is unavailable right now; nothing was changed, try again shortly",
        headers={"Retry-After": str(retry_after_s)},
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


def _backend_down(what: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, error: Exception) -> JSONResponse:
        log.warning("%s %s: %s unavailable: %r", request.method, request.url.path, what, error)
        down = unavailable(what)
        return JSONResponse(
            ErrorResponse(detail=str(down.detail)).model_dump(),
            status_code=down.status_code,
            headers=down.headers,
        )

    return handler


def install(app: FastAPI) -> None:
    """422s in one shape; a backend that is down is a 503 with Retry-After, never a 500."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(BusUnavailable, _backend_down("the message bus"))
    app.add_exception_handler(RedisError, _backend_down("Redis"))
    app.add_exception_handler(TwirpError, _backend_down("LiveKit"))
    app.add_exception_handler(aiohttp.ClientError, _backend_down("LiveKit"))


RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing, forged, expired or other-room token"},
    422: {"model": ErrorResponse, "description": "A field broke a rule; `loc` names it"},
    429: {"model": ErrorResponse, "description": "Rate limited; see the Retry-After header"},
    503: {"model": ErrorResponse, "description": "A backend is down; see Retry-After"},
}
