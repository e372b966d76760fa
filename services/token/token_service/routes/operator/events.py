"""`GET /api/operator/events`: the console's live updates as Server-Sent Events.

`?show=<room>` picks the show (default: the default show; 404 when no show has that name). Fed
by the edge's one `ConsoleFeed` per show (`token_service/console/feeds.py`: created when a
console first opens the show, at most `TOKEN_CONSOLE_ROOMS` per replica, the least recently
opened idle one closed first), never by a NATS subscription per browser. Events (`event:`
name, `data:` camelCase JSON):

- `snapshot`, first on every connect: `{room, show: {state, layout}, chat: [ChatEntry ≤100,
  oldest first], visuals: [StageVisual ≤10, oldest first], host: HostStatus, egress:
  EgressEvent | null, numbers: Numbers}`;
- `chat`: `ChatEntry {message, outcome: pending|approved|rejected|removed, reason, checks}`,
  when a message is submitted and again at its verdict or removal (same `message.id`);
- `visual`: `StageVisual`; `layout`: `StageLayoutEvent`; `show`: `ShowEvent`; `egress`:
  `EgressEvent`, as they happen;
- `host`: `HostStatus {state: none|waiting|live|released|ended, jobId, voice, avatar,
  fallbacks: [{at, voice, avatar, reason}], reason, since}`, when the host job changes;
- `numbers`: `Numbers {viewers, chatPerMinute, rejectedShare, spendTodayUsd, spendCapUsd,
  reactionP50Ms, reactions}`, every `TOKEN_CONSOLE_NUMBERS_S` (`console/models.py` says how).

A `: ping` comment comes every 15 s when nothing else does (FastAPI's SSE keep-alive). A console
that falls `TOKEN_CONSOLE_QUEUE` events behind is cut off; `EventSource` reconnects by itself
and gets a fresh snapshot. More than `TOKEN_CONSOLE_STREAMS` open streams (all shows together),
or a new show's feed while `TOKEN_CONSOLE_ROOMS` feeds all have a console open: 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ...console.feed import ConsoleFeed, ConsoleFull, ConsoleStream
from ...deps import ServicesDep, ShowRoom
from ...errors import UNKNOWN_SHOW
from .auth import operator_router

router = operator_router()

RETRY_MS = 3000
"""How long a page's EventSource waits before it reconnects."""


async def console_stream(
    services: ServicesDep, room: ShowRoom
) -> AsyncIterator[tuple[ConsoleFeed, ConsoleStream]]:
    """A place among the open streams of the show's feed, held until the response is over
    (503 when full)."""
    try:
        feed, stream = await services.console.subscribe(room)
    except ConsoleFull as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error), headers={"Retry-After": "5"}
        ) from error
    try:
        yield feed, stream
    finally:
        feed.unsubscribe(stream)


@router.get("/events", response_class=EventSourceResponse, responses=UNKNOWN_SHOW)
async def console_events(
    opened: Annotated[tuple[ConsoleFeed, ConsoleStream], Depends(console_stream, scope="request")],
) -> AsyncIterator[ServerSentEvent]:
    """The console's live updates of one show (`show`; default: the default show; 404 when
    unknown) as Server-Sent Events: a `snapshot` first, then `chat`, `visual`, `layout`, `show`,
    `egress`, `host` and `numbers` events as they happen. Needs the operator secret or the
    console session (no extra header: it changes nothing)."""
    feed, stream = opened
    snapshot = await feed.snapshot()
    yield ServerSentEvent(event="snapshot", raw_data=snapshot.to_json().decode(), retry=RETRY_MS)
    while True:
        event, model = await stream.queue.get()
        if stream.dropped:
            return  # it fell behind: end, and let the page reconnect for a fresh snapshot
        yield ServerSentEvent(event=event, raw_data=model.to_json().decode())
