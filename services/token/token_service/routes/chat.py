"""Chat ingress (`POST /api/chat`) and history reads (`GET /api/chat/history`)."""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import ValidationError

from livestage import metrics, subjects
from livestage.bus import BusUnavailable
from livestage.schemas import (
    MESSAGE_ID_PATTERN,
    ChatMessage,
    HistoryReply,
    HistoryRequest,
    new_id,
    now_ms,
)

from ..deps import (
    ChatSender,
    Services,
    ServicesDep,
    ViewerDep,
    admit_chat,
    limit_history,
)
from ..errors import RESPONSES, unavailable
from ..models import ChatAccepted, ChatRequest, ErrorResponse, HistoryResponse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/chat", tags=["chat"])


def message_id(identity: str, client_id: str | None) -> str:
    """A fresh id, or one derived from (author, clientId) so a resend is the same message."""
    if client_id is None:
        return new_id()
    return hashlib.sha256(f"{identity}:{client_id}".encode()).hexdigest()[:32]


async def recent_history(
    services: Services, room: str, limit: int, after: str | None = None
) -> HistoryReply:
    """Ask chat-history for `room`'s last `limit` approved messages (or up to `limit` stored
    after the message `after`); a 503 if NATS is down.

    A reply that does not parse raises `ValidationError`: each route decides what that means.
    """
    try:
        return await services.require_bus().request(
            subjects.history_recent(room),
            HistoryRequest(room=room, limit=limit, after=after),
            HistoryReply,
            timeout_s=services.edge.history_timeout_s,
        )
    except BusUnavailable as error:
        raise unavailable("chat history", retry_after_s=5) from error


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChatAccepted,  # documents the 202; the route builds it (see the return)
    responses=RESPONSES,
)
async def submit_chat(
    request: ChatRequest, sender: Annotated[ChatSender, Depends(admit_chat)]
) -> Response:
    """Queue a chat line for moderation in the room of the viewer's token (a show's: 401
    for a deleted one); 202 only once JetStream has stored it."""
    return await send_chat(sender, request)


@functools.lru_cache(maxsize=4096)
def _author_line(room: str, identity: str, name: str, avatar: str) -> ChatMessage:
    """A validated chat line of this author in this room, remembered: each POST copies it with
    its own id, body and time instead of validating every field again. An author whose fields
    do not validate raises here on every POST, as `ChatMessage(...)` did (never remembered)."""
    return ChatMessage(
        id="0",
        room=room,
        author_identity=identity,
        author_name=name,
        avatar=avatar,
        body="-",
        kind="viewer",
        created_at=now_ms(),
    )


def chat_message(
    room: str, identity: str, name: str, avatar: str, message_id: str, body: str
) -> ChatMessage:
    """The `ChatMessage` of a chat POST, field for field what validating it would give: the
    author's fields validated once (`_author_line`); `message_id` (`message_id()`: hex or
    `new_id()`), `body` (a `ChatRequest` body: cleaned, 1-MAX_CHAT_CHARS characters, as
    `ChatBody` requires) and the time are valid by construction."""
    line = _author_line(room, identity, name, avatar)
    return line.model_copy(update={"id": message_id, "body": body, "created_at": now_ms()})


async def send_chat(sender: ChatSender, request: ChatRequest) -> Response:
    """`submit_chat`'s work once the sender is admitted (`chat_ingress.py` calls it too)."""
    viewer, services = sender.viewer, sender.services
    room = viewer.room
    avatars = services.edge.avatars
    message = chat_message(
        room,
        viewer.identity,
        viewer.name,
        viewer.avatar if viewer.avatar in avatars else avatars[0],
        message_id(viewer.identity, request.client_id),
        request.body,
    )
    # BusUnavailable becomes a 503 (errors.py): never a 202 for a message JetStream did not store;
    # a publish JetStream did not confirm in time (PublishUnconfirmed) says it may be stored and
    # that a resend is safe: the id, and so Nats-Msg-Id, is derived from (visitor, clientId).
    await services.publish_chat(subjects.chat_submitted(room), message)
    metrics.counter(metrics.CHAT_SUBMITTED).add(1)
    # A Response is sent as it is: no validation and serialisation of ChatAccepted per POST
    # (the id is 32 hex characters, nothing to escape).
    return Response(
        content=b'{"id":"' + message.id.encode() + b'"}',
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


@router.get(
    "/history",
    response_model=HistoryResponse,
    response_model_by_alias=True,
    responses=RESPONSES
    | {502: {"model": ErrorResponse, "description": "chat-history answered nonsense"}},
    dependencies=[Depends(limit_history)],
)
async def chat_history(
    viewer: ViewerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200, description="How many messages at most.")] = 50,
    after: Annotated[
        str | None,
        Query(
            pattern=MESSAGE_ID_PATTERN,
            description="A message id: the messages stored after it, in the order they were "
            "sent to the room (a page catching up after a reconnect). Page on with the last "
            "id while `more` is true; `gap` says the id is no longer in history.",
        ),
    ] = None,
) -> HistoryResponse:
    """The recent approved chat of the room of the viewer's token, oldest first (answered by
    chat-history over NATS)."""
    try:
        reply = await recent_history(services, viewer.room, limit, after)
    except ValidationError as error:
        log.error(
            "chat-history answered %s with a malformed reply: %s",
            subjects.history_recent(viewer.room),
            error.errors(include_url=False),
        )
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            detail="the chat history service sent a reply the edge cannot read; "
            "live chat still works",
        ) from error
    return HistoryResponse(messages=reply.messages, more=reply.more, gap=reply.gap)
