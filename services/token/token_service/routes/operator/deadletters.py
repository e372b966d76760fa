"""Operator dead-letter routes (`/api/operator/deadletters...`, operator bearer secret).

A dead letter is a message a durable consumer gave up on (`livestage.deadletter`): its retry
budget ran out (`exhausted`) or it never validates (`invalid`). These routes list them (newest
first), show one, replay one (publish it again for its consumer, then delete it) or delete one.
Ids are the dead letter's sequence in the DEADLETTER stream. This is a JSON API: payloads are
returned as JSON values, never rendered.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import nats.errors
from fastapi import HTTPException, Path, Query, Response, status

from livestage.bus import Bus, BusUnavailable
from livestage.deadletter import StoredDeadLetter
from livestage.subjects import CONSUMER_NAME_PATTERN, ROOM_NAME_PATTERN

from ...deps import ServicesDep
from ...errors import RESPONSES
from ...models import ApiModel, ErrorResponse
from .auth import operator_router

router = operator_router("/deadletters", ["operator: dead letters"])

DeadLetterId = Annotated[
    int,
    Path(
        ge=1,
        le=2**63 - 1,  # a JetStream sequence is a uint64; past int64 servers refuse it
        description="The dead letter's id (its sequence in the DEADLETTER stream).",
    ),
]
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No dead letter with this id"},
}


class DeadLetterInfo(ApiModel):
    id: int
    consumer: str
    reason: Literal["exhausted", "invalid"]
    error: str
    subject: str
    room: str
    headers: dict[str, str]
    payload: Any
    """The original payload as JSON (its text when it is not JSON)."""
    payload_encoding: Literal["utf-8", "base64"]
    deliveries: int
    stream: str
    stream_seq: int
    stored_at: int
    failed_at: int


class DeadLetterList(ApiModel):
    dead_letters: list[DeadLetterInfo]


class ReplayAccepted(ApiModel):
    id: int
    consumer: str
    subject: str
    stream_seq: int
    """Where JetStream stored the replay."""


def _info(stored: StoredDeadLetter) -> DeadLetterInfo:
    letter = stored.letter
    return DeadLetterInfo(
        id=stored.seq,
        consumer=letter.consumer,
        reason=letter.reason,
        error=letter.error,
        subject=letter.subject,
        room=letter.room,
        headers=letter.headers,
        payload=stored.payload_json(),
        payload_encoding=letter.payload_encoding,
        deliveries=letter.deliveries,
        stream=letter.stream,
        stream_seq=letter.stream_seq,
        stored_at=letter.stored_at,
        failed_at=letter.failed_at,
    )


def _bus(services: ServicesDep) -> Bus:
    return services.require_bus()


def _unavailable(error: Exception) -> BusUnavailable:
    return BusUnavailable(f"JetStream did not answer about dead letters: {error!r}")


async def _find(bus: Bus, dead_letter_id: int) -> StoredDeadLetter:
    try:
        stored = await bus.dead_letters.get(dead_letter_id)
    except (nats.errors.Error, TimeoutError, OSError) as error:
        raise _unavailable(error) from error
    if stored is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no dead letter {dead_letter_id}: it was replayed, deleted or aged out "
            "(list them at GET /api/operator/deadletters)",
        )
    return stored


@router.get("", response_model=DeadLetterList, responses={422: RESPONSES[422]})
async def list_dead_letters(
    services: ServicesDep,
    consumer: Annotated[
        str | None,
        Query(pattern=rf"^{CONSUMER_NAME_PATTERN.pattern}$", description="Only this consumer's."),
    ] = None,
    room: Annotated[
        str | None,
        Query(pattern=rf"^{ROOM_NAME_PATTERN.pattern}$", description="Only this room's."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="How many at most.")] = 50,
) -> DeadLetterList:
    """Dead letters, newest first, optionally of one consumer and/or one room."""
    try:
        found = await _bus(services).dead_letters.list(consumer=consumer, room=room, limit=limit)
    except (nats.errors.Error, TimeoutError, OSError) as error:
        raise _unavailable(error) from error
    return DeadLetterList(dead_letters=[_info(stored) for stored in found])


@router.get(
    "/{dead_letter_id}",
    response_model=DeadLetterInfo,
    responses={**NOT_FOUND, 422: RESPONSES[422]},
)
async def show_dead_letter(dead_letter_id: DeadLetterId, services: ServicesDep) -> DeadLetterInfo:
    """One dead letter: why it failed, the original subject, headers and payload."""
    return _info(await _find(_bus(services), dead_letter_id))


@router.post(
    "/{dead_letter_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayAccepted,
    responses={**NOT_FOUND, 422: RESPONSES[422]},
)
async def replay_dead_letter(dead_letter_id: DeadLetterId, services: ServicesDep) -> ReplayAccepted:
    """Publish the original again for the consumer that gave up on it, then delete the dead
    letter; 202 once JetStream stored the replay.

    The replay keeps the payload (and its message id: consumers are idempotent on it, so it is
    delivered once) under a fresh Nats-Msg-Id, so JetStream's de-duplication window cannot drop
    it, and only that consumer handles it. Should it fail again it becomes a new dead letter.
    """
    bus = _bus(services)
    stored = await _find(bus, dead_letter_id)
    try:
        ack = await bus.dead_letters.replay(stored)
    except (nats.errors.Error, TimeoutError, OSError) as error:
        raise _unavailable(error) from error
    return ReplayAccepted(
        id=stored.seq,
        consumer=stored.letter.consumer,
        subject=stored.letter.subject,
        stream_seq=ack.seq,
    )


@router.delete(
    "/{dead_letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, 422: RESPONSES[422]},
)
async def delete_dead_letter(dead_letter_id: DeadLetterId, services: ServicesDep) -> Response:
    """Discard a dead letter without replaying it."""
    bus = _bus(services)
    try:
        deleted = await bus.dead_letters.delete(dead_letter_id)
    except (nats.errors.Error, TimeoutError, OSError) as error:
        raise _unavailable(error) from error
    if not deleted:
        await _find(bus, dead_letter_id)  # raises the 404
    return Response(status_code=status.HTTP_204_NO_CONTENT)
