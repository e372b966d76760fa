"""The host's turns: from the brain's plan to what the host said on `host.spoken.<room>`.

`Turns.speak` starts one turn on the current session's voice (`say` verbatim, anything else
composed from the persona and the plan); the turn is followed to its end, its words handed to
the brain (`HostBrain.speech_finished`) and published as a `SpokenTurn`. `interrupt` cuts the
turn short (an operator's skip, a newer comment). When the switcher gives a failing session up
mid-turn, the turn is *abandoned*: what was said stands, and a turn that lost every word is
tried again on the new voice (`HostBrain.speech_failed`).

The session's state changes come here too: how long the host spoke (per voice, metered) and
how fast it answered a comment (`livestage.host.reaction_latency`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.events import AgentStateChangedEvent
from opentelemetry.metrics import Meter

from host_agent.brain import HostBrain, Said, TurnPlan
from host_agent.inputs import spoken_from_said
from host_agent.metering import Metering
from host_agent.persona import Persona
from host_agent.prompt import compose
from host_agent.voices.base import VoiceBackend
from livestage import metrics
from livestage.schemas import SpokenTurn, new_id

log = logging.getLogger(__name__)

CHAT_CONTEXT_ITEMS = 24
"""The session's own chat context is trimmed to this many items (the brain keeps memory)."""


@dataclass
class Turn:
    plan: TurnPlan
    handle: SpeechHandle
    started_speaking_at: float | None = None
    latency_recorded: bool = False
    abandoned: bool = False
    """Its session was given up mid-turn (a backend failed): retry it if nothing was said."""
    settled: bool = False
    """Its outcome was already handed to the brain."""


async def settle(handle: SpeechHandle, within: float) -> bool:
    """Wait (bounded) for a speech to finish; False if it did not."""
    if handle.done():
        return True
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    handle.add_done_callback(lambda _: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, within)
    except TimeoutError:
        return False
    return True


class Turns:
    """The turn under way (`current`), and every turn followed to its end."""

    def __init__(
        self,
        room: rtc.Room,
        brain: HostBrain,
        metering: Metering,
        *,
        clock: Callable[[], float],
        meter: Meter | None,
        persona: Callable[[], Persona],
        agent: Callable[[], Agent | None],
        publish: Callable[[SpokenTurn], Awaitable[None]],
        on_change: Callable[[], None],
        wake: asyncio.Event,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        memory: Callable[[TurnPlan], Sequence[Mapping[str, Any]]] = lambda plan: (),
    ) -> None:
        self.room = room
        self.room_name = room.name
        self.brain = brain
        self.metering = metering
        self.clock = clock
        self._counter = functools.partial(metrics.counter, meter=meter)
        self._histogram = functools.partial(metrics.histogram, meter=meter)
        self._persona = persona
        self._agent = agent
        self._publish = publish
        self._on_change = on_change
        self._wake = wake
        self._spawn = spawn
        self._memory = memory
        """What is remembered of a reply's authors (quoted data for the prompt)."""
        self.current: Turn | None = None
        self.spoken = 0
        """Turns published on `host.spoken`."""
        self.speaking_s = 0.0
        """Seconds the host spoke, every voice together."""
        self._speaking_since: float | None = None
        self._own_ids: set[str] = set()
        self._following = 0
        """Turns not yet followed to their end (their `host.spoken` may still be on its way)."""

    def speak(self, plan: TurnPlan, session: AgentSession, voice: VoiceBackend) -> None:
        if plan.kind == "say":
            handle = voice.say(session, plan.text)
        else:
            prompt = compose(self._persona(), plan, self._memory(plan))
            handle = voice.start_turn(session, prompt, plan)
        self.current = Turn(plan, handle)
        self._on_change()
        self._following += 1
        self._spawn(self._follow(self.current))

    @property
    def all_done(self) -> bool:
        """No turn under way, and every finished one handed to the brain and published."""
        return self.current is None and self._following == 0

    @property
    def heard(self) -> bool:
        """The turn under way has begun to be heard (it is past planning)."""
        return self.current is not None and self.current.started_speaking_at is not None

    def interrupt(self, session: AgentSession | None, cause: str) -> None:
        turn = self.current
        if session is None or turn is None or turn.handle.done():
            return
        self._counter(metrics.HOST_INTERRUPTIONS).add(1, {"cause": cause})
        log.info("room %s: interrupting turn %d (%s)", self.room_name, turn.plan.number, cause)
        turn.handle.interrupt(force=True)
        with contextlib.suppress(RuntimeError):
            session.interrupt(force=True)

    def is_own(self, spoken_id: str) -> bool:
        """A `host.spoken` event this job published."""
        return spoken_id in self._own_ids

    def abandon(self) -> Turn | None:
        """The current turn's session is being given up: mark it, and return it."""
        if self.current is not None:
            self.current.abandoned = True
        return self.current

    async def give_up(self, turn: Turn, within: float) -> None:
        """After its session closed: a speech still stuck behind the failure is given up."""
        if not await settle(turn.handle, within):
            self.settle_abandoned(turn, "")

    async def _follow(self, turn: Turn) -> None:
        try:
            await self._follow_to_end(turn)
        finally:
            self._following -= 1
            self._wake.set()

    async def _follow_to_end(self, turn: Turn) -> None:
        await turn.handle  # never raises; the outcome is in the handle
        if turn.settled:
            return
        if turn.handle.exception() is not None:
            log.warning(
                "room %s: turn %d failed: %r",
                self.room_name,
                turn.plan.number,
                turn.handle.exception(),
            )
        messages = [
            item
            for item in turn.handle.chat_items
            if isinstance(item, llm.ChatMessage) and item.role == "assistant"
        ]
        text = " ".join((m.text_content or "").strip() for m in messages).strip()
        if turn.abandoned:
            self.settle_abandoned(turn, text)
        else:
            turn.settled = True
            interrupted = turn.handle.interrupted or any(m.interrupted for m in messages)
            said = self.brain.speech_finished(turn.plan, text, interrupted=interrupted)
            if self.current is turn:
                self.current = None
            if said is not None:
                await self._publish_spoken(turn, said)
        await self._trim_chat_context()
        self._on_change()
        self._wake.set()

    def settle_abandoned(self, turn: Turn, text: str) -> None:
        """A turn whose session was given up: what was said stands, else it is tried again."""
        if turn.settled:
            return
        turn.settled = True
        if self.current is turn:
            self.current = None
        if text:
            said = self.brain.speech_finished(turn.plan, text, interrupted=True)
            if said is not None:
                self._spawn(self._publish_spoken(turn, said))
            return
        retried = self.brain.speech_failed(turn.plan)
        log.info(
            "room %s: turn %d (%s) was lost to the failing backend; %s",
            self.room_name,
            turn.plan.number,
            turn.plan.kind,
            "trying it again" if retried else "dropping it (it failed before)",
        )
        self._wake.set()

    async def _publish_spoken(self, turn: Turn, said: Said) -> None:
        spoken = spoken_from_said(
            said,
            id=new_id(),
            room=self.room_name,
            started_at=turn.started_speaking_at or turn.plan.planned_at,
            speaker_name=self._persona().name,
            speaker_identity=self.room.local_participant.identity,
        )
        self._own_ids.add(spoken.id)
        self.spoken += 1
        self._counter(metrics.HOST_TURNS).add(1, {"kind": said.kind})
        await self._publish(spoken)

    async def _trim_chat_context(self) -> None:
        agent = self._agent()
        if agent is None or len(agent.chat_ctx.items) <= CHAT_CONTEXT_ITEMS * 2:
            return
        with contextlib.suppress(RuntimeError):
            trimmed = agent.chat_ctx.copy().truncate(max_items=CHAT_CONTEXT_ITEMS)
            await agent.update_chat_ctx(trimmed)

    def on_agent_state(
        self, event: AgentStateChangedEvent, voice: VoiceBackend, *, current: bool, voice_name: str
    ) -> None:
        """A session's state changed: count the seconds `voice` spoke (any session's), and for
        the `current` session, when the turn began to be heard and how fast it answered."""
        if event.old_state == "speaking" and self._speaking_since is not None:
            spoken_s = max(0.0, event.created_at - self._speaking_since)
            self._speaking_since = None
            self.speaking_s += spoken_s
            self._counter(metrics.HOST_SPEAKING_TIME).add(spoken_s, {"voice": voice.name})
            self.metering.speech(voice.speech_backend, spoken_s)
        if not current:
            return
        now = self.clock()
        turn = self.current
        if event.new_state == "speaking" and turn is not None:
            turn.started_speaking_at = turn.started_speaking_at or now
            if turn.plan.kind == "reply" and not turn.latency_recorded and turn.plan.comments:
                turn.latency_recorded = True
                approved = min(c.approved_at for c in turn.plan.comments)
                self._histogram(metrics.HOST_REACTION_LATENCY).record(
                    max(0.0, (now - approved) * 1000), {"voice": voice_name}
                )
        if event.new_state == "speaking":
            self._speaking_since = event.created_at
