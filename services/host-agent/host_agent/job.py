"""One host job: a room's host from dispatch to goodbye. The I/O around `HostBrain`.

1. Connect to the room (subscribing to no media: viewers publish none) and NATS, publish
   `host.job.<room>` started. (`start()` returns once connected; the job runs as a task.)
2. Wait for a real viewer (a STANDARD participant `viewer_…`) at most `HOST_VIEWER_WAIT_S`;
   with none, end with reason `no_viewer`.
3. Go live: build the voice and avatar backends (the local ones when the room's daily spend cap
   is reached; the next one when one cannot start), start the `AgentSession` (no audio input,
   no turn detection, no VAD: the host only speaks), publish `live`, and follow NATS:
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

Falling back instead of going dark: when a production backend fails while live (the session's
unrecoverable `error` event from OpenAI Realtime or the pipeline's model or speech: a 401, a
5xx or a timeout after the short retries, a socket that cannot be reopened; the Anam avatar
leaving or dropping its video; the daily spend cap), the job logs why, counts it
(`livestage.host.backend_fallbacks{kind, backend, reason}`) and rebuilds its `AgentSession` on
the local backend of that kind. An unrecoverable realtime error closes the whole session, so a
new one is always built; the brain (memory, handled ids), the NATS subscriptions, the job and
whatever backend did not fail (e.g. the Anam avatar when only the voice failed: the new session's
audio is routed to it) carry over. A turn that lost every word to the failure is tried again on
the new voice (`HostBrain.speech_failed`).

Usage (`host_agent.metering`): tokens and seconds from the sessions' usage, a paid avatar's
minutes, priced from `HOST_COST_*`, exported as metrics, counted against the room's daily cap
in Redis, and summed in the `ended` event's `usage`.

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
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, AutoSubscribe, JobContext, llm
from livekit.agents.metrics.usage import ModelUsage
from livekit.agents.voice import SpeechHandle, room_io
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    CloseEvent,
    ErrorEvent,
)
from opentelemetry import metrics as otel_metrics

from host_agent import avatars, voices
from host_agent.avatars.base import AvatarBackend, avatar_identity, is_production
from host_agent.avatars.output import route_audio
from host_agent.brain import (
    Comment,
    HostBrain,
    Interrupt,
    Said,
    Screen,
    Speak,
    TurnPlan,
)
from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.failures import GENERIC, failure_reason
from host_agent.metering import Metering, UsageKey
from host_agent.persona import Persona, PersonaError, find_persona, load_persona
from host_agent.prompt import compose
from host_agent.settings import resolve_avatar, resolve_voice
from host_agent.voices.base import SessionParts, VoiceBackend
from livestage import attributes, metrics, subjects
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

log = logging.getLogger(__name__)

STATE_ATTRIBUTE = attributes.HOST_STATE
PERSONA_ATTRIBUTE = attributes.HOST_PERSONA
VOICE_ATTRIBUTE = attributes.HOST_VOICE
AVATAR_ATTRIBUTE = attributes.HOST_AVATAR
CHAT_CONTEXT_ITEMS = 24
"""The session's own chat context is trimmed to this many items (the brain keeps memory)."""
SETTLE_S = 1.0
"""How long a rebuild waits for the failed session's speech to finish before giving it up."""
AVATAR_LEAVE_S = 0.5
"""After an avatar's video goes away, how long to wait to see whether the avatar left too."""
GIVE_UP_S = 1.5
"""How long a rebuild waits for the failed session to close (it may be stuck on its backend)."""

__all__ = ["HostJob", "JobConfig", "host_state"]


@dataclass
class _Turn:
    plan: TurnPlan
    handle: SpeechHandle
    started_speaking_at: float | None = None
    latency_recorded: bool = False
    abandoned: bool = False
    """Its session was given up mid-turn (a backend failed): retry it if nothing was said."""
    settled: bool = False
    """Its outcome was already handed to the brain."""


def _production_voice(name: str) -> bool:
    backend = voices.REGISTRY.get(name)
    return backend is not None and backend.production


def _production_avatar(name: str) -> bool:
    return is_production(avatars.REGISTRY.get(name))


async def _settle(handle: SpeechHandle, within: float) -> bool:
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
        self.parts: SessionParts | None = None
        self.avatar: AvatarBackend | None = None
        self.metering = Metering(self.room_name, config, self._on_spend_cap)
        self.fallbacks = 0
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
        self._epoch = 0
        """Which session is current: events of older ones are ignored."""
        self._switching = False
        self._switch_lock = asyncio.Lock()
        self._voice_problem: str | None = None
        """The last recoverable failure of a production voice (a fatal one may name less)."""

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
        room.on("track_unpublished", self._on_track_unpublished)
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
        self._watch_avatar(participant.identity, "avatar_left", "left the room")
        self._wake.set()

    def _on_track_unpublished(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if publication.kind == rtc.TrackKind.KIND_VIDEO:
            self._watch_avatar(participant.identity, "no_video", "stopped publishing its video")

    def _watch_avatar(self, identity: str, reason: str, what: str) -> None:
        """A production avatar that leaves or drops its video mid-stream: use the local one."""
        avatar = self.avatar
        if (
            avatar is None
            or not is_production(avatar)
            or identity != avatar_identity(avatar)
            or self._stopped.is_set()
        ):
            return

        async def switch() -> None:
            if reason == "no_video":
                # a participant that leaves drops its tracks first: name the bigger event
                await asyncio.sleep(AVATAR_LEAVE_S)
                if identity not in self.ctx.room.remote_participants:
                    reason_now, what_now = "avatar_left", "left the room"
                else:
                    reason_now, what_now = reason, what
            else:
                reason_now, what_now = reason, what
            await self._switch(avatar=True, reason=reason_now, detail=f"the avatar {what_now}")

        self._spawn(switch())

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
        voice_name = resolve_voice(
            host, openai_key=self.config.openai_key, available=set(voices.REGISTRY)
        )
        avatar_name = resolve_avatar(
            host, anam_key=self.config.anam_key, available=set(avatars.REGISTRY)
        )
        paid = [
            (kind, name)
            for kind, name, production in (
                ("voice", voice_name, _production_voice(voice_name)),
                ("avatar", avatar_name, _production_avatar(avatar_name)),
            )
            if production
        ]
        if paid and await self.metering.cap_reached():
            self._log_cap(self.metering.room_spent_today or 0.0)
            for kind, name in paid:
                self._fallback(kind, name, "local", "spend_cap", "the daily spend cap is reached")
            voice_name = "local" if _production_voice(voice_name) else voice_name
            avatar_name = "local" if _production_avatar(avatar_name) else avatar_name
        self.voice_name = voice_name
        self.voice, self.parts = self._start_voice(voice_name)
        self.avatar, session = await self._start_avatar(avatar_name)
        await self._start_session(session)
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
        self._spawn(self._count_avatar_minutes())
        await self._publish_job("live")

    def _fallback(self, kind: str, backend: str, to: str, reason: str, detail: object) -> None:
        self.fallbacks += 1
        log.warning(
            "room %s: %s backend %s failed (%s: %s); carrying on with %s",
            self.room_name,
            kind,
            backend,
            reason,
            detail,
            to,
        )
        self._counter(metrics.BACKEND_FALLBACKS).add(
            1, {"kind": kind, "backend": backend, "reason": reason}
        )

    def _start_voice(self, name: str) -> tuple[VoiceBackend, SessionParts]:
        """The chosen voice, or the local one when it cannot start (logged and counted)."""
        try:
            voice = voices.create_voice(name, self.config, self.persona)
            return voice, voice.session_parts()
        except Exception as error:
            if name == "local":
                raise
            self._fallback("voice", name, "local", failure_reason(error), error)
            self.voice_name = "local"
            voice = voices.create_voice("local", self.config, self.persona)
            return voice, voice.session_parts()

    async def _start_avatar(self, name: str) -> tuple[AvatarBackend, AgentSession]:
        """The chosen avatar (else local, else none; each failure logged and counted), started
        on a new session that has not started yet."""
        candidates = [name] + [n for n in ("local", "none") if n != name and n in avatars.REGISTRY]
        for index, candidate in enumerate(candidates):
            session = self._new_session()
            try:
                avatar = avatars.create_avatar(candidate, self.config, self.persona)
                await avatar.start(session, self.ctx.room)
            except Exception as error:
                if index + 1 == len(candidates):
                    raise
                self._fallback(
                    "avatar", candidate, candidates[index + 1], failure_reason(error), error
                )
                continue
            self.avatar_name = candidate
            if is_production(avatar):
                self.metering.avatar_started(getattr(avatar, "usage_backend", candidate))
            return avatar, session
        raise BackendUnavailable("no avatar backend could start")

    def _new_session(self) -> AgentSession:
        """A session on the current voice, its events bound to a new epoch (not started)."""
        assert self.parts is not None and self.voice is not None
        parts, voice = self.parts, self.voice
        self._epoch += 1
        epoch = self._epoch
        session: AgentSession = AgentSession(
            llm=parts.llm,
            tts=parts.tts,
            vad=None,
            turn_handling={"turn_detection": None},
            user_away_timeout=None,
            **parts.options,
        )
        seen: dict[UsageKey, ModelUsage] = {}
        session.on("agent_state_changed", functools.partial(self._on_agent_state, epoch, voice))
        session.on("close", functools.partial(self._on_session_close, epoch))
        session.on("error", functools.partial(self._on_session_error, epoch, voice))
        session.on(
            "session_usage_updated",
            lambda event: self.metering.session_usage(
                voice.usage_backend, seen, event.usage.model_usage
            ),
        )
        return session

    async def _start_session(self, session: AgentSession) -> None:
        agent = Agent(instructions=self.persona.instructions)
        await session.start(
            agent,
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
        self.session, self.agent = session, agent
        self.agent_state = "initializing"

    # ---- falling back while live ------------------------------------------------------------

    def _on_session_error(self, epoch: int, voice: VoiceBackend, event: ErrorEvent) -> None:
        error = event.error
        if epoch != self._epoch or not voice.production or voice is not self.voice:
            return
        reason = failure_reason(error)
        if getattr(error, "recoverable", False):
            if reason not in GENERIC:
                self._voice_problem = reason
            log.info("room %s: %s voice: %s (retrying)", self.room_name, voice.name, reason)
            return
        if reason in GENERIC and self._voice_problem:
            reason = self._voice_problem
        self._switching = True  # before the session closes itself: the job goes on
        if self.turn is not None:  # before its handle ends: what it lost is tried again
            self.turn.abandoned = True
        cause = getattr(error, "error", error)
        self._spawn(self._switch(voice=True, reason=reason, detail=repr(cause)))

    def _on_spend_cap(self, spent_usd: float) -> None:
        self._log_cap(spent_usd)
        self._spawn(
            self._switch(
                voice=True, avatar=True, reason="spend_cap", detail="the daily spend cap is reached"
            )
        )

    def _log_cap(self, spent_usd: float) -> None:
        log.warning(
            "room %s: estimated spend today %.4f USD reached the daily cap of %.4f USD "
            "(HOST_COST_DAILY_CAP_USD); the host uses the local voice and avatar",
            self.room_name,
            spent_usd,
            self.metering.cap_usd,
        )

    async def _switch(
        self, *, voice: bool = False, avatar: bool = False, reason: str, detail: str
    ) -> None:
        """Rebuild the session with the failed production backend(s) replaced by local ones."""
        async with self._switch_lock:
            to_voice = voice and self.voice is not None and self.voice.production
            to_avatar = avatar and self.avatar is not None and is_production(self.avatar)
            if self._stopped.is_set() or not (to_voice or to_avatar) or self.session is None:
                self._switching = False
                return
            self._switching = True
            try:
                await self._rebuild(to_voice, to_avatar, reason, detail)
            finally:
                self._switching = False
                self._wake.set()

    async def _rebuild(self, to_voice: bool, to_avatar: bool, reason: str, detail: str) -> None:
        started = time.monotonic()
        if to_voice:
            self._fallback("voice", self.voice_name, "local", reason, detail)
        if to_avatar:
            self._fallback("avatar", self.avatar_name, "local", reason, detail)
        old_session, turn = self.session, self.turn
        assert old_session is not None
        self._epoch += 1  # from here on the old session's events are ignored
        if turn is not None:
            turn.abandoned = True
            with contextlib.suppress(Exception):
                turn.handle.interrupt(force=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old_session.aclose(), GIVE_UP_S)
        if turn is not None and not await _settle(turn.handle, SETTLE_S):
            self._settle_abandoned(turn, "")  # a speech stuck behind the failure: give it up
        if to_avatar and self.avatar is not None:
            self.metering.avatar_stopped()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.avatar.aclose(), 5)
        if to_voice and self.voice is not None:
            old_voice = self.voice
            self.voice_name = "local"
            self.voice = voices.create_voice("local", self.config, self.persona)
            self.parts = self.voice.session_parts()
            self._voice_problem = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old_voice.aclose(), 3)
        if to_avatar:
            self.avatar, session = await self._start_avatar("local")
        else:
            session = self._new_session()
            identity = avatar_identity(self.avatar)
            if identity is not None:  # the avatar that did not fail speaks the new voice
                route_audio(session, self.ctx.room, identity)
        await self._start_session(session)
        log.info(
            "room %s: the host is back on voice %s, avatar %s (%.1f s after the failure)",
            self.room_name,
            self.voice_name,
            self.avatar_name,
            time.monotonic() - started,
        )
        self._refresh_attributes()

    async def _count_avatar_minutes(self) -> None:
        """A paid avatar's minutes as they pass, so the daily cap sees them in time."""
        while not self._stopped.is_set():
            await asyncio.sleep(self.config.cost.check_interval_s)
            self.metering.avatar_tick()

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
            if self._switching:  # a backend is being replaced: decide on the new session
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.5)
                continue
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
            self._settle_abandoned(turn, text)
        else:
            turn.settled = True
            interrupted = turn.handle.interrupted or any(m.interrupted for m in messages)
            said = self.brain.speech_finished(turn.plan, text, interrupted=interrupted)
            if self.turn is turn:
                self.turn = None
            if said is not None:
                await self._publish_spoken(turn, said)
        await self._trim_chat_context()
        self._refresh_attributes()
        self._wake.set()

    def _settle_abandoned(self, turn: _Turn, text: str) -> None:
        """A turn whose session was given up: what was said stands, else it is tried again."""
        if turn.settled:
            return
        turn.settled = True
        if self.turn is turn:
            self.turn = None
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

    def _on_agent_state(
        self, epoch: int, voice: VoiceBackend, event: AgentStateChangedEvent
    ) -> None:
        if event.old_state == "speaking" and self._speaking_since is not None:
            spoken_s = max(0.0, event.created_at - self._speaking_since)
            self._speaking_since = None
            self.speaking_s += spoken_s
            self._counter(metrics.HOST_SPEAKING_TIME).add(spoken_s, {"voice": voice.name})
            self.metering.speech(voice.speech_backend, spoken_s)
        if epoch != self._epoch:
            return
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
        if event.new_state == "speaking":
            self._speaking_since = event.created_at
        self.agent_state = event.new_state
        self._refresh_attributes()

    def _on_session_close(self, epoch: int, event: CloseEvent) -> None:
        if epoch != self._epoch or self._switching:
            return  # a session the job gave up (or is giving up) for a new one
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
        if self.fallbacks:
            usage["fallbacks"] = float(self.fallbacks)
        usage |= self.metering.summary()
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
        room.off("track_unpublished", self._on_track_unpublished)
        room.off("disconnected", self._on_room_disconnected)
        for watch in self._watches:
            await watch.stop()
        self._stopped.set()
        async with self._switch_lock:  # a rebuild under way finishes first
            self._epoch += 1  # the session's own close is ours now
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.aclose(), 3)
        if self.avatar is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.avatar.aclose(), 3)
        if self.voice is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.voice.aclose(), 3)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.metering.aclose()
        self._counter(metrics.AGENT_JOBS_ENDED).add(1, {"reason": reason})
        await self._publish_job("ended", reason)
        if self.bus is not None:
            await self.bus.close()
        provider = otel_metrics.get_meter_provider()
        flush = getattr(provider, "force_flush", None)
        if callable(flush):
            with contextlib.suppress(Exception):
                flush(timeout_millis=2000)
