"""Chat ingress (`POST /api/chat`) and history reads (`GET /api/chat/history`)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from livestage import subjects
from livestage.bus import BusUnavailable
from livestage.schemas import ChatMessage, HistoryReply, HistoryRequest, new_id, now_ms

from .deps import ServicesDep, ViewerDep, limit_chat, limit_history
from .errors import RESPONSES, unavailable
from .models import ChatAccepted, ChatRequest, HistoryResponse

router = APIRouter(prefix="/api/chat", tags=["chat"])


def message_id(identity: str, client_id: str | None) -> str:
    """A fresh id, or one derived from (author, clientId) so a resend is the same message."""
    if client_id is None:
        return new_id()
    return hashlib.sha256(f"{identity}:{client_id}".encode()).hexdigest()[:32]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChatAccepted,
    responses=RESPONSES,
    dependencies=[Depends(limit_chat)],
)
async def submit_chat(
    request: ChatRequest, viewer: ViewerDep, services: ServicesDep
) -> ChatAccepted:
    """Queue a chat line for moderation; 202 only once JetStream has stored it."""
    room = services.livekit.room
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
    # BusUnavailable becomes a 503 (errors.py): never a 202 for a message JetStream did not store.
    await services.require_bus().publish(subjects.chat_submitted(room), message)
    return ChatAccepted(id=message.id)


@router.get(
    "/history",
    response_model=HistoryResponse,
    response_model_by_alias=True,
    responses=RESPONSES,
    dependencies=[Depends(limit_history)],
)
async def chat_history(
    viewer: ViewerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200, description="How many messages at most.")] = 50,
) -> HistoryResponse:
    """The room's recent approved chat, oldest first (answered by chat-history over NATS)."""
    room = services.livekit.room
    bus = services.require_bus()
    try:
        reply = await bus.request(
            subjects.history_recent(room),
            HistoryRequest(room=room, limit=limit),
            HistoryReply,
            timeout_s=services.edge.history_timeout_s,
        )
    except BusUnavailable as error:
        raise unavailable("chat history", retry_after_s=5) from error
    return HistoryResponse(messages=reply.messages)
