"""The wire's models as the brain's inputs, and the brain's output as the wire's: pure.

The job hears chat, stage visuals and what hosts said on NATS (`livestage.schemas`) and hands
them to `HostBrain` as its own plain data (`Comment`, `Screen`, `Said`); what the brain says the
host said goes back out as a `SpokenTurn`. Every conversion and filter is here, free of I/O, so
each is tested with plain data (`tests/test_inputs.py`).
"""

from __future__ import annotations

from host_agent.brain import Comment, Said, Screen
from livestage.schemas import (
    MAX_SPOKEN_CHARS,
    PLATFORM_NAMES,
    ChatMessage,
    SpokenTurn,
    StageVisual,
)


def comment_from_chat(message: ChatMessage, room: str, approved_at: float) -> Comment | None:
    """A viewer's approved message in `room` as a comment (seconds), None for anything else.
    A line from YouTube's or Twitch's chat carries its platform's name, and its event."""
    if message.kind != "viewer" or message.room != room:
        return None
    source = message.source
    return Comment(
        id=message.id,
        author_name=message.author_name,
        author_identity=message.author_identity,
        body=message.body,
        created_at=message.created_at / 1000,
        approved_at=approved_at,
        platform=PLATFORM_NAMES[source.platform] if source else "",
        event=source.event if source else "message",
        amount=source.amount if source else "",
    )


def said_from_spoken(turn: SpokenTurn) -> Said:
    """A turn a host published (this job or an earlier one) as something the host said."""
    return Said(
        text=turn.text,
        kind=turn.kind,
        at=turn.ended_at / 1000,
        reply_to=tuple(turn.reply_to),
        interrupted=turn.interrupted,
    )


def visual_expired(visual: StageVisual, now_ms: int) -> bool:
    """A visual whose `expires_at` has passed (0: it never expires)."""
    return bool(visual.expires_at) and visual.expires_at <= now_ms


def screen_from_visual(visual: StageVisual) -> Screen:
    """What the brain knows of a visual on the stage."""
    return Screen(
        id=visual.id,
        kind=visual.kind,
        title=visual.title,
        summary=visual.summary,
        topic=visual.topic,
    )


def spoken_from_said(
    said: Said,
    *,
    id: str,
    room: str,
    started_at: float,
    speaker_name: str,
    speaker_identity: str,
) -> SpokenTurn:
    """What the host said as the `host.spoken` event: started at `started_at` (seconds), never
    ending before it started, its text cut to `MAX_SPOKEN_CHARS`."""
    started_ms = int(started_at * 1000)
    return SpokenTurn(
        id=id,
        room=room,
        text=said.text[:MAX_SPOKEN_CHARS],
        reply_to=list(said.reply_to),
        interrupted=said.interrupted,
        speaker_name=speaker_name,
        speaker_identity=speaker_identity,
        kind=said.kind,
        started_at=started_ms,
        ended_at=max(int(said.at * 1000), started_ms),
    )
