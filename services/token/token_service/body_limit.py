"""Request bodies are capped before anything reads them: 413, unread and unverified.

An ASGI middleware (outermost, so it runs before routing, auth, limits and the webhook's
signature check): a `Content-Length` above the cap is answered 413 at once, and a body without
one (chunked) is counted as it streams in and cut off with 413 at the first byte over the cap.
The cap is chosen by path: LiveKit webhooks get their own (they are larger and come from the
server), everything else the JSON cap.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _message(limit: int) -> str:
    return f"request body too large: at most {limit} bytes are accepted here"


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the cap. An HTTPException, so FastAPI's
    body parsing passes it on (it turns other errors into a 400) and it is answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_message(limit))


class BodyLimit:
    def __init__(self, app: ASGIApp, cap_for_path: Callable[[str], int]) -> None:
        self.app = app
        self.cap_for_path = cap_for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.cap_for_path(scope["path"])
        declared = next(
            (value for name, value in scope["headers"] if name == b"content-length"), None
        )
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length > limit:
                await self._too_large(send, limit)
                return

        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(send, limit)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        body = json.dumps({"detail": _message(limit)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
