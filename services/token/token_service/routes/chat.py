"""Chat ingress (`POST /api/chat`) and history reads (`GET /api/chat/history`)."""

from __future__ import annotations

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


async def send_chat(sender: ChatSender, request: ChatRequest) -> Response:
    """`submit_chat`'s work once the sender is admitted (`chat_ingress.py` calls it too)."""
    viewer, services = sender.viewer, sender.services
    room = viewer.room
    message = ChatMessage(
        id=message_id(viewer.identity, request.client_id),
        room=room,
        author_identity=viewer.identity,
        author_name=viewer.name,
        avatar=viewer.avatar
        if viewer.avatar in services.edge.avatars
        else services.edge.avatars[0],
        body=request.body,
        kind="viewer",
        created_at=now_ms(),
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
