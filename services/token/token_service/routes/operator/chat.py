"""Operator chat routes: remove a message, read recent history (`/api/operator/chat/...`).

A removal travels as `chat.removed.<room>` (ChatRemoval): chat-history deletes it from Redis
and tells every page to hide it. The removal id is derived from the message id, so removing the
same message twice within JetStream's duplicate window stores one removal. Both routes act on
the default show, or on the show named by the `show` query parameter (404 when unknown).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, status

from livestage import subjects
from livestage.schemas import MESSAGE_ID_PATTERN, ChatRemoval, now_ms, removal_id

from ...deps import ServicesDep, ShowRoom
from ...errors import RESPONSES, UNKNOWN_SHOW
from ...models import ApiModel, HistoryResponse
from ..chat import recent_history
from .auth import operator_router

router = operator_router("/chat", ["operator: chat"], UNKNOWN_SHOW)

MessageIdPath = Annotated[
    str,
    Path(
        pattern=MESSAGE_ID_PATTERN,
        description="The message's id (as in history and in the chat packets).",
    ),
]


class RemovalAccepted(ApiModel):
    message_id: str
    removal_id: str


@router.delete(
    "/messages/{message_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RemovalAccepted,
    responses={422: RESPONSES[422]},
)
async def remove_message(
    message_id: MessageIdPath,
    services: ServicesDep,
    room: ShowRoom,
    reason: Annotated[
        str, Query(max_length=300, description="Why (kept in the removal event; not shown).")
    ] = "",
) -> RemovalAccepted:
    """Remove a message from history and from every page; 202 once the removal is stored.

    Also works for a message still on its way (it is kept out when it arrives) and for one
    already gone (nothing changes).
    """
    removal = ChatRemoval(
        id=removal_id(message_id),
        room=room,
        message_id=message_id,
        reason=" ".join(reason.split())[:300],
        created_at=now_ms(),
    )
    await services.require_bus().publish(subjects.chat_removed(room), removal)
    return RemovalAccepted(message_id=message_id, removal_id=removal.id)


@router.get("/messages", response_model=HistoryResponse, response_model_by_alias=True)
async def recent_messages(
    services: ServicesDep,
    room: ShowRoom,
    limit: Annotated[int, Query(ge=1, le=200, description="How many messages at most.")] = 50,
) -> HistoryResponse:
    """The room's recent approved chat, oldest first, with ids to remove."""
    reply = await recent_history(services, room, limit)
    return HistoryResponse(messages=reply.messages)
