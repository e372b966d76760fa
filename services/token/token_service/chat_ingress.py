"""`POST /api/chat`, the edge's busiest route, answered without the framework's per-request work.

An ASGI middleware just inside the security headers: a chat POST with a JSON body that is a valid
`ChatRequest` goes straight to `admit_sender` (`admit_chat`'s checks, the headers read in one
pass) and `send_chat` (the route's own work), skipping routing over every route, FastAPI's
dependency solving and request validation, and the inner middleware, which together cost the
edge more CPU per POST than the chat work itself. Its answers
are the route's: the errors it meets go to the app's own exception handlers (401, 403, 429, 503
in the same bodies and headers). Anything else (another content type, a body that does not parse
or breaks a rule) goes on to the FastAPI route, which answers it as before (its 422 naming the
field), and which is also what OpenAPI documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .deps import Services, admit_sender
from .models import ChatRequest
from .routes.chat import send_chat

CHAT_PATH = "/api/chat"

Handler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass
class _ChatHeaders:
    """What a chat POST reads of its headers (the first of each, as `Request.headers.get`)."""

    json: bool = False
    authorization: str | None = None
    forwarded_for: str | None = None


_WANTED = {b"content-type", b"authorization", b"x-forwarded-for"}


def _chat_headers(scope: Scope) -> _ChatHeaders:
    """The headers a chat POST needs, in one pass over the raw ones (`Request.headers.get`
    decodes and scans them again for each). `json`: a `Content-Type: application/json` body
    (with or without parameters), the one kind the route would read as JSON that this path
    takes on; others go to the route."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _WANTED and name not in found:
            found[name] = value
    content_type = found.get(b"content-type")
    authorization = found.get(b"authorization")
    forwarded_for = found.get(b"x-forwarded-for")
    return _ChatHeaders(
        json=content_type is not None
        and content_type.split(b";", 1)[0].strip().lower() == b"application/json",
        authorization=None if authorization is None else authorization.decode("latin-1"),
        forwarded_for=None if forwarded_for is None else forwarded_for.decode("latin-1"),
    )


async def _body(receive: Receive) -> bytes:
    """The request's body, as `Request.body()` reads it (its async generator costs a chat POST
    more than the rest of reading it); a client gone before it came in is `ClientDisconnect`."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parsed(body: bytes) -> ChatRequest | None:
    try:
        return ChatRequest.model_validate_json(body)
    except ValidationError:
        return None


def _handler_for(app: Any, error: Exception) -> Handler | None:
    """The app's exception handler for `error` (the nearest class in its MRO), as Starlette
    picks it."""
    handlers: dict[Any, Handler] = app.exception_handlers
    for kind in type(error).__mro__:
        if kind in handlers:
            return handlers[kind]
    return None


class ChatIngress:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHAT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _chat_headers(scope)
        if not headers.json:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            # BodyLimit's receive raises its 413 here: answered as the route answered it
            body = await _body(receive)
        except Exception as error:
            await self._answer_error(request, send, error)
            return
        chat = _parsed(body)
        if chat is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        try:
            services: Services = scope["app"].state.services
            client = scope.get("client")
            network = services.network_of(client[0] if client else "unknown", headers.forwarded_for)
            sender = await admit_sender(services, headers.authorization, network)
            response = await send_chat(sender, chat)
        except Exception as error:
            await self._answer_error(request, send, error)
            return
        await response(scope, receive, send)

    @staticmethod
    async def _answer_error(request: Request, send: Send, error: Exception) -> None:
        """Answer `error` with the app's handler for it; one it has none for goes on up (a 500
        from the outermost middleware, as from the route)."""
        handler = _handler_for(request.scope["app"], error)
        if handler is None:
            raise error
        response = await handler(request, error)
        await response(request.scope, request.receive, send)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the route the body already read, then waits on the real one
    (for the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
