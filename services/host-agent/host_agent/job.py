"""One host job: a room's host from dispatch to goodbye. The I/O around `HostBrain`.

1. Connect to the room (subscribing to no media: viewers publish none) and NATS, publish
   `host.job.<room>` started. (`start()` returns once connected; the job runs as a task.)
2. Wait for a real viewer (a STANDARD participant `viewer_…`) at most `HOST_VIEWER_WAIT_S`;
   with none, end with reason `no_viewer`.
3. Go live: build the voice and avatar backends, start the `AgentSession` (no audio input, no
   turn detection, no VAD: the host only speaks), publish `live`, and follow NATS:
   - `host.spoken.<room>` history of the last `HOST_MEMORY_S` (read once): what earlier jobs
     said, so nothing they answered is answered again;
   - `chat.approved.<room>` since `HOST_MEMORY_S` ago (context; the brain answers only what is
     not stale and not answered);
   - `stage.visual.<room>` from the last one (relayed to the room's stage topic, and sent to
     every viewer who joins later);
   - `host.control.<room>` new commands only (an old `say` must never be replayed).
4. Loop: ask the brain, carry out `Speak` / `Interrupt`, publish each finished turn on
   `host.spoken.<room>`, keep the host's state in its participant attributes.
5. End when no viewer has been in the room for `HOST_EMPTY_GRACE_S` (`viewers_left`), on worker
   shutdown (`shutdown`), or when something breaks (`crashed`): close the session, take the
   avatar out, publish `ended` with the reason, shut the job down.

Captions: the session's transcription output (`lk.transcription` text streams from the host's
identity) is synchronised with the audio playout (word timings from the local TTS), so the pages
show the words as they are heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, AutoSubscribe, JobContext, llm
from livekit.agents.voice import SpeechHandle, room_io
from livekit.agents.voice.events import AgentStateChangedEvent, CloseEvent
from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import Meter

from host_agent import avatars, voices
from host_agent.avatars.base import AvatarBackend, usage_of
from host_agent.brain import (
    BrainConfig,
    Comment,
    HostBrain,
    Interrupt,
    Said,
    Screen,
    Speak,
    TurnPlan,
)
from host_agent.errors import BackendUnavailable
from host_agent.persona import Persona, PersonaError, find_persona, load_persona
from host_agent.prompt import compose
from host_agent.settings import HostSettings, resolve_avatar, resolve_voice
from host_agent.voices.base import SessionParts, VoiceBackend
from livestage import metrics, subjects
from livestage.bus import Bus, BusUnavailable, Observed, Watch
from livestage.identity import is_viewer_identity
from livestage.schemas import (
    ChatMessage,
    HostCommand,
    HostJobEvent,
    SpokenTurn,
    StageVisual,
    new_id,
    now_ms,
)
from livestage.settings import (
    AnamSettings,
    LiveKitSettings,
    NatsSettings,
    OpenAISettings,
    TopicSettings,
)

log = logging.getLogger(__name__)

STATE_ATTRIBUTE = "livestage.host.state"
PERSONA_ATTRIBUTE = "livestage.host.persona"
VOICE_ATTRIBUTE = "livestage.host.voice"
AVATAR_ATTRIBUTE = "livestage.host.avatar"
CHAT_CONTEXT_ITEMS = 24
"""The session's own chat context is trimmed to this many items (the brain keeps memory)."""


@dataclass
class JobConfig:
    """Everything a job needs, loaded once per process (or handed in by tests)."""

    host: HostSettings = field(default_factory=HostSettings)
    livekit: LiveKitSettings = field(default_factory=LiveKitSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    openai_key: bool = False
    anam_key: bool = False
    clock: Callable[[], float] = time.time
    meter: Meter | None = None
    """Where the job's metrics go (None: the global provider `setup_telemetry` installed)."""

    @classmethod
    def from_env(cls) -> JobConfig:
        return cls(
            openai_key=OpenAISettings().api_key is not None,
            anam_key=AnamSettings().api_key is not None,
        )

    def brain_config(self) -> BrainConfig:
        host = self.host
        return BrainConfig(
            batch_window_s=host.batch_window_s,
            max_comments=host.max_comments,
            stale_after_s=host.stale_after_s,
            idle_after_s=host.idle_after_s,
            memory_s=host.memory_s,
            recent_chat_limit=host.recent_chat_limit,
            recent_talk_limit=host.recent_talk_limit,
            greet=host.greet,
        )


@dataclass
class _Turn:
    plan: TurnPlan
    handle: SpeechHandle
    started_speaking_at: float | None = None
    latency_recorded: bool = False


def host_state(*, paused: bool, agent_state: str, planning: bool) -> str:
    """The host's state for the pages: paused, speaking, thinking or idle."""
    if paused:
        return "paused"
    if agent_state == "speaking":
        return "speaking"
    if agent_state == "thinking" or planning:
        return "thinking"
    return "idle"


class HostJob:
    def __init__(self, ctx: JobContext, config: JobConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.room_name = subjects.check_room(ctx.room.name)
        self.clock = config.clock
        self._counter = functools.partial(metrics.counter, meter=config.meter)
        self._histogram = functools.partial(metrics.histogram, meter=config.meter)
        self.persona: Persona = load_persona(config.host.persona_file)
        self.brain = HostBrain(self.persona.name, config.brain_config(), self.clock)
        self.bus: Bus | None = None
        self.session: AgentSession | None = None
        self.agent: Agent | None = None
        self.voice: VoiceBackend | None = None
        self.avatar: AvatarBackend | None = None
        self.voice_name = ""
        self.avatar_name = ""
        self.visual: StageVisual | None = None
        self.viewers: set[str] = set()
        self.empty_since: float | None = None
        self.turn: _Turn | None = None
        self.agent_state = "initializing"
        self.published_state: dict[str, str] = {}
        self.stop_reason: str | None = None
        self.turns_spoken = 0
        self.speaking_s = 0.0
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._watches: list[Watch] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._own_turn_ids: set[str] = set()
        self._seen_commands: set[str] = set()
        self._speaking_since: float | None = None
        self._task: asyncio.Task[str] | None = None
        self._ready = False

    # ---- the whole job ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the room and run the job in the background; returns at once.

        The job ends by itself (`ctx.shutdown(reason)`), or when the worker shuts it down: the
        framework waits for the entrypoint before telling anyone, so the entrypoint returns
        here and the shutdown callback stops the running job.
        """
        self.ctx.add_shutdown_callback(self._on_shutdown)
        await self.ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
        self._task = asyncio.create_task(self.run(), name=f"host-job {self.room_name}")

    async def run(self) -> str:
        """Run the job to its end; returns the reason and shuts the job down."""
        self._counter(metrics.AGENT_JOBS_STARTED).add(1)
        reason = "crashed"
        try:
            self.bus = await Bus.connect(self.config.nats, f"host-agent {self.room_name}")
            await self.bus.ensure_streams()
            await self._publish_job("started")
            self._follow_presence()
            if not await self._wait_for_viewer():
                reason = self.stop_reason or "no_viewer"
                if reason == "no_viewer":
                    log.info(
                        "room %s: no viewer within %.0f s; ending the job",
                        self.room_name,
                        self.config.host.viewer_wait_s,
                    )
                return reason
            await self._go_live()
            reason = await self._live()
            return reason
        except asyncio.CancelledError:
            reason = self.stop_reason or "shutdown"
            raise
        except Exception:
            log.exception("host job in room %s crashed", self.room_name)
            self._counter(metrics.AGENT_JOB_CRASHES).add(1)
            reason = "crashed"
            return reason
        finally:
            await asyncio.shield(self._teardown(reason))
            self.ctx.shutdown(reason)

    async def _on_shutdown(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = "shutdown"
        self._stopped.set()
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 8)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()

    # ---- viewers ----------------------------------------------------------------------------

    @staticmethod
    def _is_viewer(participant: rtc.RemoteParticipant) -> bool:
        return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD and (
            is_viewer_identity(participant.identity)
        )

    def _follow_presence(self) -> None:
        room = self.ctx.room
        for participant in room.remote_participants.values():
            if self._is_viewer(participant):
                self.viewers.add(participant.identity)
        room.on("participant_connected", self._on_participant_connected)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("disconnected", self._on_room_disconnected)
        self._update_empty()

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if not self._is_viewer(participant):
            return
        self.viewers.add(participant.identity)
        self._update_empty()
        if self.visual is not None and self.session is not None:
            self._spawn(self._send_visual(self.visual, to=[participant.identity]))
        self._wake.set()

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        self.viewers.discard(participant.identity)
        self._update_empty()
        self._wake.set()

    def _on_room_disconnected(self, reason: Any = None) -> None:
        if self.stop_reason is None:
            self.stop_reason = "room_closed"
        self._stopped.set()
        self._wake.set()

    def _update_empty(self) -> None:
        if self.viewers:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = self.clock()

    async def _wait_for_viewer(self) -> bool:
        deadline = time.monotonic() + self.config.host.viewer_wait_s
        while not self.viewers and not self._stopped.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        return bool(self.viewers) and not self._stopped.is_set()

    # ---- going live -------------------------------------------------------------------------

    async def _go_live(self) -> None:
        host = self.config.host
        self.voice_name = resolve_voice(
            host, openai_key=self.config.openai_key, available=set(voices.REGISTRY)
        )
        self.avatar_name = resolve_avatar(
            host, anam_key=self.config.anam_key, available=set(avatars.REGISTRY)
        )
        self.voice, parts = self._start_voice(self.voice_name)
        self.session = AgentSession(
            llm=parts.llm,
            tts=parts.tts,
            vad=None,
            turn_handling={"turn_detection": None},
            user_away_timeout=None,
            **parts.options,
        )
        self.session.on("agent_state_changed", self._on_agent_state)
        self.session.on("close", self._on_session_close)
        self.avatar = await self._start_avatar(self.avatar_name, self.session)
        self.agent = Agent(instructions=self.persona.instructions)
        await self.session.start(
            self.agent,
            room=self.ctx.room,
            room_options=room_io.RoomOptions(
                audio_input=False,
                video_input=False,
                text_input=False,
                close_on_disconnect=False,
                text_output=room_io.TextOutputOptions(sync_transcription=True),
            ),
            record=False,
            session_host=False,  # no remote-session byte streams to every viewer
        )
        log.info(
            "room %s live: voice %s, avatar %s, persona %s",
            self.room_name,
            self.voice_name,
            self.avatar_name,
            self.persona.name,
        )
        bus = self.bus
        assert bus is not None
        await self._read_spoken_history()
        since = self.clock() - host.memory_s
        room = self.room_name
        self._watches += [
            await bus.watch(
                subjects.stage_visual(room), StageVisual, self._on_visual, start="last"
            ),
            await bus.watch(subjects.host_control(room), HostCommand, self._on_command),
            await bus.watch(subjects.chat_approved(room), ChatMessage, self._on_chat, start=since),
            await bus.watch(subjects.host_spoken(room), SpokenTurn, self._on_spoken),
        ]
        self.brain.went_live()
        self._ready = True
        self._refresh_attributes()  # "idle" only once every command and message is heard
        await self._publish_job("live")

    def _fallback(self, kind: str, backend: str, to: str, error: BaseException) -> None:
        reason = type(error).__name__
        log.warning(
            "room %s: %s backend %s failed to start (%s: %s); carrying on with %s",
            self.room_name,
            kind,
            backend,
            reason,
            error,
            to,
        )
        self._counter(metrics.BACKEND_FALLBACKS).add(
            1, {"kind": kind, "backend": backend, "reason": reason}
        )

    def _start_voice(self, name: str) -> tuple[VoiceBackend, SessionParts]:
        """The chosen voice, or the local one when it cannot start (logged and counted)."""
        host = self.config.host
        try:
            voice = voices.create_voice(name, host, self.persona)
            return voice, voice.session_parts()
        except Exception as error:
            if name == "local":
                raise
            self._fallback("voice", name, "local", error)
            self.voice_name = "local"
            voice = voices.create_voice("local", host, self.persona)
            return voice, voice.session_parts()

    async def _start_avatar(self, name: str, session: AgentSession) -> AvatarBackend:
        """The chosen avatar, else the local one, else none (each failure logged, counted)."""
        host = self.config.host
        candidates = [name] + [n for n in ("local", "none") if n != name and n in avatars.REGISTRY]
        for index, candidate in enumerate(candidates):
            try:
                avatar = avatars.create_avatar(candidate, host, self.persona)
                await avatar.start(session, self.ctx.room)
            except Exception as error:
                if index + 1 == len(candidates):
                    raise
                self._fallback("avatar", candidate, candidates[index + 1], error)
                continue
            self.avatar_name = candidate
            return avatar
        raise BackendUnavailable("no avatar backend could start")

    async def _read_spoken_history(self) -> None:
        assert self.bus is not None
        since = self.clock() - self.config.host.memory_s
        for observed in await self.bus.history(
            subjects.host_spoken(self.room_name), SpokenTurn, since=since
        ):
            self._remember_spoken(observed.model)

    # ---- the live loop ----------------------------------------------------------------------

    async def _live(self) -> str:
        grace = self.config.host.empty_grace_s
        while True:
            if self._stopped.is_set():
                return self.stop_reason or "shutdown"
            now = self.clock()
            if self.empty_since is not None and now - self.empty_since >= grace:
                log.info("room %s: no viewer for %.0f s; ending the job", self.room_name, grace)
                return "viewers_left"
            decision = self.brain.decide()
            if isinstance(decision, Speak):
                self._speak(decision.plan)
                continue
            if isinstance(decision, Interrupt):
                self._interrupt(decision.cause)
                continue
            deadlines = [t for t in (self.brain.next_wakeup(),) if t is not None]
            if self.empty_since is not None:
                deadlines.append(self.empty_since + grace)
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _speak(self, plan: TurnPlan) -> None:
        assert self.session is not None and self.voice is not None
        if plan.kind == "say":
            handle = self.voice.say(self.session, plan.text)
        else:
            handle = self.voice.start_turn(self.session, compose(self.persona, plan), plan)
        self.turn = _Turn(plan, handle)
        self._refresh_attributes()
        self._spawn(self._follow_turn(self.turn))

    def _interrupt(self, cause: str) -> None:
        session, turn = self.session, self.turn
        if session is None or turn is None or turn.handle.done():
            return
        self._counter(metrics.HOST_INTERRUPTIONS).add(1, {"cause": cause})
        log.info("room %s: interrupting turn %d (%s)", self.room_name, turn.plan.number, cause)
        turn.handle.interrupt(force=True)
        with contextlib.suppress(RuntimeError):
            session.interrupt(force=True)

    async def _follow_turn(self, turn: _Turn) -> None:
        await turn.handle  # never raises; the outcome is in the handle
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
        interrupted = turn.handle.interrupted or any(m.interrupted for m in messages)
        said = self.brain.speech_finished(turn.plan, text, interrupted=interrupted)
        if self.turn is turn:
            self.turn = None
        if said is not None:
            await self._publish_spoken(turn, said)
        await self._trim_chat_context()
        self._refresh_attributes()
        self._wake.set()

    async def _publish_spoken(self, turn: _Turn, said: Said) -> None:
        assert self.bus is not None
        started = turn.started_speaking_at or turn.plan.planned_at
        spoken = SpokenTurn(
            id=new_id(),
            room=self.room_name,
            text=said.text[:4000],
            reply_to=list(said.reply_to),
            interrupted=said.interrupted,
            speaker_name=self.persona.name,
            speaker_identity=self.ctx.room.local_participant.identity,
            kind=said.kind,
            started_at=int(started * 1000),
            ended_at=max(int(said.at * 1000), int(started * 1000)),
        )
        self._own_turn_ids.add(spoken.id)
        self.turns_spoken += 1
        self._counter(metrics.HOST_TURNS).add(1, {"kind": said.kind})
        try:
            await self.bus.publish(subjects.host_spoken(self.room_name), spoken)
        except BusUnavailable as error:
            log.warning("room %s: could not publish what the host said: %s", self.room_name, error)

    async def _trim_chat_context(self) -> None:
        agent = self.agent
        if agent is None or len(agent.chat_ctx.items) <= CHAT_CONTEXT_ITEMS * 2:
            return
        with contextlib.suppress(RuntimeError):
            trimmed = agent.chat_ctx.copy().truncate(max_items=CHAT_CONTEXT_ITEMS)
            await agent.update_chat_ctx(trimmed)

    # ---- session events ---------------------------------------------------------------------

    def _on_agent_state(self, event: AgentStateChangedEvent) -> None:
        now = self.clock()
        turn = self.turn
        if event.new_state == "speaking" and turn is not None:
            turn.started_speaking_at = turn.started_speaking_at or now
            if turn.plan.kind == "reply" and not turn.latency_recorded and turn.plan.comments:
                turn.latency_recorded = True
                approved = min(c.approved_at for c in turn.plan.comments)
                self._histogram(metrics.HOST_REACTION_LATENCY).record(
                    max(0.0, (now - approved) * 1000), {"voice": self.voice_name}
                )
        if event.old_state == "speaking":
            spoken_s = max(0.0, event.created_at - (self._speaking_since or event.created_at))
            self.speaking_s += spoken_s
            self._counter(metrics.HOST_SPEAKING_TIME).add(spoken_s, {"voice": self.voice_name})
        if event.new_state == "speaking":
            self._speaking_since = event.created_at
        self.agent_state = event.new_state
        self._refresh_attributes()

    def _on_session_close(self, event: CloseEvent) -> None:
        log.info("room %s: agent session closed (%s)", self.room_name, event.reason)
        if self.stop_reason is None:
            # we never close the session ourselves before teardown: a clean close comes from
            # the framework shutting the job down (worker stop), whatever reason it names
            self.stop_reason = "crashed" if event.error is not None else "shutdown"
            if event.error is not None:
                log.error("room %s: the agent session failed: %r", self.room_name, event.error)
        self._stopped.set()
        self._wake.set()

    def _refresh_attributes(self) -> None:
        room = self.ctx.room
        if not room.isconnected() or not self._ready:
            return  # no state before every subscription is up: "idle" means "listening"
        wanted = {
            STATE_ATTRIBUTE: host_state(
                paused=self.brain.paused,
                agent_state=self.agent_state,
                planning=self.turn is not None and self.agent_state != "speaking",
            ),
            PERSONA_ATTRIBUTE: self.persona.name,
            VOICE_ATTRIBUTE: self.voice_name,
            AVATAR_ATTRIBUTE: self.avatar_name,
        }
        changed = {k: v for k, v in wanted.items() if self.published_state.get(k) != v}
        if not changed:
            return
        self.published_state |= changed

        async def publish() -> None:
            with contextlib.suppress(Exception):
                await room.local_participant.set_attributes(changed)

        self._spawn(publish())

    # ---- NATS -------------------------------------------------------------------------------

    async def _on_chat(self, observed: Observed[ChatMessage]) -> None:
        message = observed.model
        if message.kind != "viewer" or message.room != self.room_name:
            return
        comment = Comment(
            id=message.id,
            author_name=message.author_name,
            author_identity=message.author_identity,
            body=message.body,
            created_at=message.created_at / 1000,
            approved_at=observed.stored_at,
        )
        if self.brain.observe_chat(comment):
            self._wake.set()

    def _remember_spoken(self, turn: SpokenTurn) -> None:
        self.brain.observe_spoken(
            Said(
                text=turn.text,
                kind=turn.kind,
                at=turn.ended_at / 1000,
                reply_to=tuple(turn.reply_to),
                interrupted=turn.interrupted,
            )
        )

    async def _on_spoken(self, observed: Observed[SpokenTurn]) -> None:
        # another job in this room (a restart racing this one) spoke: never answer it again
        if observed.model.id not in self._own_turn_ids:
            self._remember_spoken(observed.model)

    async def _on_visual(self, observed: Observed[StageVisual]) -> None:
        visual = observed.model
        if visual.room != self.room_name:
            return
        if visual.expires_at and visual.expires_at <= now_ms():
            log.info("room %s: skipping expired visual %s", self.room_name, visual.id)
            return
        if self.visual is not None and self.visual.id == visual.id:
            return
        self.visual = visual
        self.brain.observe_visual(
            Screen(
                id=visual.id,
                kind=visual.kind,
                title=visual.title,
                summary=visual.summary,
                topic=visual.topic,
            )
        )
        await self._send_visual(visual)
        self._wake.set()

    async def _send_visual(self, visual: StageVisual, to: list[str] | None = None) -> None:
        room = self.ctx.room
        if not room.isconnected():
            return
        try:
            await room.local_participant.publish_data(
                visual.to_json(),
                reliable=True,
                topic=self.config.topics.stage_topic,
                destination_identities=to or [],
            )
        except Exception as error:
            log.warning("room %s: could not relay visual %s: %r", self.room_name, visual.id, error)

    async def _on_command(self, observed: Observed[HostCommand]) -> None:
        command = observed.model
        if command.room != self.room_name or command.id in self._seen_commands:
            return
        self._seen_commands.add(command.id)
        log.info("room %s: operator command %s", self.room_name, command.action)
        if command.action == "pause":
            self.brain.pause()
            self._interrupt("skip")
        elif command.action == "resume":
            self.brain.resume()
        elif command.action == "skip":
            self._interrupt("skip")
        elif command.action == "say":
            self.brain.say(command.text)
        elif command.action == "persona":
            await self._switch_persona(command.text)
        self._refresh_attributes()
        self._wake.set()

    async def _switch_persona(self, name: str) -> None:
        try:
            persona = load_persona(find_persona(self.config.host.persona_dir, name))
        except PersonaError as error:
            log.error("room %s: persona switch refused: %s", self.room_name, error)
            return
        self.persona = persona
        self.brain.set_host_name(persona.name)
        if self.voice is not None:
            self.voice.set_persona(persona)
        if self.agent is not None:
            with contextlib.suppress(RuntimeError):
                await self.agent.update_instructions(persona.instructions)
        log.info("room %s: persona is now %s", self.room_name, persona.name)

    async def _publish_job(self, event: str, reason: str = "") -> None:
        if self.bus is None:
            return
        usage: dict[str, float] = {"speaking_s": round(self.speaking_s, 3)}
        usage["turns"] = float(self.turns_spoken)
        if self.voice is not None:
            usage |= self.voice.usage
        if self.avatar is not None:
            usage |= usage_of(self.avatar)
        try:
            await self.bus.publish(
                subjects.host_job(self.room_name),
                HostJobEvent(
                    id=new_id(),
                    room=self.room_name,
                    job_id=self.ctx.job.id,
                    event=event,  # type: ignore[arg-type]
                    reason=reason,
                    voice=self.voice_name,
                    avatar=self.avatar_name,
                    usage=usage if event == "ended" else {},
                    created_at=now_ms(),
                ),
            )
        except BusUnavailable as error:
            log.warning("room %s: could not publish job %s: %s", self.room_name, event, error)

    # ---- the end ----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _teardown(self, reason: str) -> None:
        log.info("room %s: host job ending (%s)", self.room_name, reason)
        room = self.ctx.room
        room.off("participant_connected", self._on_participant_connected)
        room.off("participant_disconnected", self._on_participant_disconnected)
        room.off("disconnected", self._on_room_disconnected)
        for watch in self._watches:
            await watch.stop()
        if self.session is not None:
            self.session.off("close", self._on_session_close)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.aclose(), 3)
        if self.avatar is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.avatar.aclose(), 3)
        if self.voice is not None:
            with contextlib.suppress(Exception):
                await self.voice.aclose()
        for task in list(self._tasks):
            task.cancel()
        self._counter(metrics.AGENT_JOBS_ENDED).add(1, {"reason": reason})
        await self._publish_job("ended", reason)
        if self.bus is not None:
            await self.bus.close()
        provider = otel_metrics.get_meter_provider()
        flush = getattr(provider, "force_flush", None)
        if callable(flush):
            with contextlib.suppress(Exception):
                flush(timeout_millis=2000)
