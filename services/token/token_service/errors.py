"""Error responses: every error names what went wrong; 422s name the field and never echo input."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .models import ErrorItem, ErrorResponse


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


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)


RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing, forged, expired or other-room token"},
    422: {"model": ErrorResponse, "description": "A field broke a rule; `loc` names it"},
    429: {"model": ErrorResponse, "description": "Rate limited; see the Retry-After header"},
    503: {"model": ErrorResponse, "description": "A backend is down; see Retry-After"},
}
