"""The host's backends and their session: going live on them, falling back when one fails.

`BackendSwitcher` owns the voice, the avatar and the `AgentSession` that joins them; the job
asks it to go live (`go_live`), and to close (`close`). It falls back by itself, kept apart
from what it switches between (like Pipecat's `ServiceSwitcher`):

- going live: the local voice and avatar when the room's daily spend cap is reached; the next
  backend when one cannot start (avatar: the chosen one, then local, then none);
- live: a production backend that fails (the session's unrecoverable `error` event from OpenAI
  Realtime or the pipeline's model or speech; the Anam avatar leaving or dropping its video; the
  daily spend cap) is replaced by the local one of its kind. An unrecoverable realtime error
  closes the whole session, so a new one is always built (`_rebuild`); whatever did not fail
  carries over (the Anam avatar when only the voice failed: the new session's audio is routed
  to it). The turn under way is abandoned (`Turns.abandon`): tried again if it lost every word.

Each fallback is logged, counted (`livestage.host.backend_fallbacks{kind, backend, reason}`)
and reported to the job once the new backends are in place (`on_fallback`: it publishes
`host.job` `fallback`).

Pause release (`release.py` decides when): `release()` closes the session and the avatar session
(what costs money while the host is quiet) and keeps the voice's parts, the room and the
backend names; `rebuild()` starts them again on the same backends (an avatar that cannot start
now falls back as at going live).
Sessions are numbered (`_epoch`): events of a session given up are ignored, and one switch at a
time runs (`_switch_lock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.metrics.usage import ModelUsage
from livekit.agents.voice import room_io
from livekit.agents.voice.events import AgentStateChangedEvent, CloseEvent, ErrorEvent

from host_agent.agent import HostAgent
from host_agent.avatars import AVATARS, AvatarBackend
from host_agent.avatars.output import route_audio
from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.failures import GENERIC, failure_reason
from host_agent.metering import Metering, UsageKey
from host_agent.output_guard import OutputGuard, build_guard
from host_agent.persona import Persona
from host_agent.prompt import system_prompt
from host_agent.turns import Turns
from host_agent.voices import VOICES
from host_agent.voices.base import SessionParts, VoiceBackend
from livestage import metrics
from livestage.registry import Registry, UnknownBackend

log = logging.getLogger(__name__)

SETTLE_S = 1.0
"""How long a rebuild waits for the failed session's speech to finish before giving it up."""
AVATAR_LEAVE_S = 0.5
"""After an avatar's video goes away, how long to wait to see whether the avatar left too."""
GIVE_UP_S = 1.5
"""How long a rebuild waits for the failed session to close (it may be stuck on its backend)."""


B = TypeVar("B", VoiceBackend, AvatarBackend)


def _production(registry: Registry[VoiceBackend] | Registry[AvatarBackend], name: str) -> bool:
    return name in registry and registry.get(name).production


def create_backend(registry: Registry[B], name: str, config: JobConfig, persona: Persona) -> B:
    """`registry.create`, with an unknown name a backend that cannot start (the job falls back)."""
    try:
        backend = registry.get(name)
    except UnknownBackend as error:
        raise BackendUnavailable(str(error)) from None
    return backend.from_settings(config, persona)


def chosen_voice(config: JobConfig) -> str:
    """The voice backend a job starts with: HOST_VOICE (or the show's), else the best the keys
    allow."""
    return config.host.voice or VOICES.resolve("auto", openai_key=config.openai_key)


class BackendSwitcher:
    """The voice, the avatar and the session of one job, and the fallback between backends."""

    def __init__(
        self,
        room: rtc.Room,
        config: JobConfig,
        persona: Persona,
        metering: Metering,
        turns: Turns,
        *,
        stopped: asyncio.Event,
        wake: asyncio.Event,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        on_change: Callable[[], None],
        on_closed: Callable[[CloseEvent], None],
        on_fallback: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.room = room
        self.room_name = room.name
        self.config = config
        self.persona = persona
        self.metering = metering
        self.turns = turns
        self._stopped = stopped
        self._wake = wake
        self._spawn = spawn
        self._on_change = on_change
        self._on_closed = on_closed
        self._on_fallback = on_fallback
        self._unreported: list[str] = []
        """Fallbacks not yet reported (`on_fallback`): reported once the new backends run."""
        self.released = False
        """A held pause closed the session and the avatar session (`release`)."""
        self._counter = functools.partial(metrics.counter, meter=config.meter)
        self.session: AgentSession | None = None
        self.agent: Agent | None = None
        self.voice: VoiceBackend | None = None
        self.parts: SessionParts | None = None
        self.avatar: AvatarBackend | None = None
        self.voice_name = ""
        self.avatar_name = ""
        self.agent_state = "initializing"
        self.fallbacks = 0
        self._epoch = 0
        """Which session is current: events of older ones are ignored."""
        self._switching = False
        self._switch_lock = asyncio.Lock()
        self._voice_problem: str | None = None
        """The last recoverable failure of a production voice (a fatal one may name less)."""
        self.guard: OutputGuard | None = build_guard(config, room.name, lambda: self.voice_name)
        """What the host says is checked before it is heard (None: HOST_OUTPUT_CHECK=false)."""

    @property
    def switching(self) -> bool:
        """A failed backend is being replaced: decide on the new session."""
        return self._switching

    # ---- going live -------------------------------------------------------------------------

    async def go_live(self) -> None:
        """Build the voice and avatar and start the session on them."""
        host = self.config.host
        voice_name = chosen_voice(self.config)
        avatar_name = host.avatar or AVATARS.resolve("auto", anam_key=self.config.anam_key)
        paid = [
            (kind, name)
            for kind, name, production in (
                ("voice", voice_name, _production(VOICES, voice_name)),
                ("avatar", avatar_name, _production(AVATARS, avatar_name)),
            )
            if production
        ]
        if paid and await self.metering.cap_reached():
            self._log_cap(self.metering.room_spent_today or 0.0)
            for kind, name in paid:
                self._fallback(kind, name, "local", "spend_cap", "the daily spend cap is reached")
            voice_name = "local" if _production(VOICES, voice_name) else voice_name
            avatar_name = "local" if _production(AVATARS, avatar_name) else avatar_name
        self.voice_name = voice_name
        self.voice, self.parts = self._start_voice(voice_name)
        self.avatar, session = await self._start_avatar(avatar_name)
        await self._start_session(session)
        self._report_fallbacks()

    def _report_fallbacks(self) -> None:
        unreported, self._unreported = self._unreported, []
        for reason in unreported:
            self._on_fallback(reason)

    def _fallback(self, kind: str, backend: str, to: str, reason: str, detail: object) -> None:
        self.fallbacks += 1
        self._unreported.append(f"{kind} {backend}: {reason}")
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
            voice = create_backend(VOICES, name, self.config, self.persona)
            return voice, voice.session_parts()
        except Exception as error:
            if name == "local":
                raise
            self._fallback("voice", name, "local", failure_reason(error), error)
            self.voice_name = "local"
            voice = VOICES.create("local", self.config, self.persona)
            return voice, voice.session_parts()

    async def _start_avatar(self, name: str) -> tuple[AvatarBackend, AgentSession]:
        """The chosen avatar (else local, else none; each failure logged and counted), started
        on a new session that has not started yet."""
        candidates = [name] + [n for n in ("local", "none") if n != name and n in AVATARS]
        for index, candidate in enumerate(candidates):
            session = self._new_session()
            try:
                avatar = create_backend(AVATARS, candidate, self.config, self.persona)
                await avatar.start(session, self.room)
            except Exception as error:
                if index + 1 == len(candidates):
                    raise
                self._fallback(
                    "avatar", candidate, candidates[index + 1], failure_reason(error), error
                )
                continue
            self.avatar_name = candidate
            if avatar.production:
                self.metering.avatar_started(avatar.usage_backend or candidate)
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
        assert self.parts is not None
        agent = HostAgent(
            instructions=system_prompt(self.persona),
            guard=self.guard,
            realtime=isinstance(self.parts.llm, llm.RealtimeModel),
        )
        await session.start(
            agent,
            room=self.room,
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

    async def set_persona(self, persona: Persona) -> None:
        """Speak as `persona` from the next turn on (and in any session built later)."""
        self.persona = persona
        if self.voice is not None:
            self.voice.set_persona(persona)
        if self.agent is not None:
            with contextlib.suppress(RuntimeError):
                await self.agent.update_instructions(system_prompt(persona))

    # ---- the session's events -----------------------------------------------------------------

    def _on_agent_state(
        self, epoch: int, voice: VoiceBackend, event: AgentStateChangedEvent
    ) -> None:
        current = epoch == self._epoch
        self.turns.on_agent_state(event, voice, current=current, voice_name=self.voice_name)
        if not current:
            return
        self.agent_state = event.new_state
        self._on_change()

    def _on_session_close(self, epoch: int, event: CloseEvent) -> None:
        if epoch != self._epoch or self._switching:
            return  # a session the job gave up (or is giving up) for a new one
        self._on_closed(event)

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
        self.turns.abandon()  # before its handle ends: what it lost is tried again
        cause = getattr(error, "error", error)
        self._spawn(self._switch(voice=True, reason=reason, detail=repr(cause)))

    # ---- falling back while live ------------------------------------------------------------

    def avatar_lost(self, identity: str, reason: str, what: str) -> None:
        """A production avatar that leaves or drops its video mid-stream: use the local one."""
        avatar = self.avatar
        if (
            avatar is None
            or not avatar.production
            or identity != avatar.avatar_identity
            or self._stopped.is_set()
        ):
            return

        async def switch() -> None:
            if reason == "no_video":
                # a participant that leaves drops its tracks first: name the bigger event
                await asyncio.sleep(AVATAR_LEAVE_S)
                if identity not in self.room.remote_participants:
                    reason_now, what_now = "avatar_left", "left the room"
                else:
                    reason_now, what_now = reason, what
            else:
                reason_now, what_now = reason, what
            await self._switch(avatar=True, reason=reason_now, detail=f"the avatar {what_now}")

        self._spawn(switch())

    def spend_cap_reached(self, spent_usd: float) -> None:
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
            to_avatar = avatar and self.avatar is not None and self.avatar.production
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
        old_session = self.session
        assert old_session is not None
        self._epoch += 1  # from here on the old session's events are ignored
        turn = self.turns.abandon()
        if turn is not None:
            with contextlib.suppress(Exception):
                turn.handle.interrupt(force=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old_session.aclose(), GIVE_UP_S)
        if turn is not None:
            await self.turns.give_up(turn, SETTLE_S)
        if to_avatar and self.avatar is not None:
            self.metering.avatar_stopped()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.avatar.aclose(), 5)
        if to_voice and self.voice is not None:
            old_voice = self.voice
            self.voice_name = "local"
            self.voice = VOICES.create("local", self.config, self.persona)
            self.parts = self.voice.session_parts()
            self._voice_problem = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old_voice.aclose(), 3)
        if to_avatar:
            self.avatar, session = await self._start_avatar("local")
        else:
            session = self._new_session()
            identity = self.avatar.avatar_identity if self.avatar is not None else None
            if identity:  # the avatar that did not fail speaks the new voice
                route_audio(session, self.room, identity)
        await self._start_session(session)
        log.info(
            "room %s: the host is back on voice %s, avatar %s (%.1f s after the failure)",
            self.room_name,
            self.voice_name,
            self.avatar_name,
            time.monotonic() - started,
        )
        self._on_change()
        self._report_fallbacks()

    # ---- pause release ----------------------------------------------------------------------

    async def release(self) -> bool:
        """Close the session and the avatar session (a held pause); False if nothing to do."""
        async with self._switch_lock:
            session, avatar = self.session, self.avatar
            if self.released or self._stopped.is_set() or session is None:
                return False
            self._switching = True
            try:
                self._epoch += 1  # the session's own close is ours
                self.session = self.agent = None
                self.avatar = None  # its leaving is no failure: nothing falls back
                self.released = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.aclose(), GIVE_UP_S * 2)
                if avatar is not None:
                    if avatar.production:
                        self.metering.avatar_stopped()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(avatar.aclose(), 5)
            finally:
                self._switching = False
                self._wake.set()
        log.info(
            "room %s: paused long enough; closed the session and the %s avatar session",
            self.room_name,
            self.avatar_name,
        )
        self._on_change()
        return True

    async def rebuild(self) -> bool:
        """Start the session and the avatar again after `release`; False if not released."""
        async with self._switch_lock:
            if not self.released or self._stopped.is_set():
                return False
            self._switching = True
            try:
                self.avatar, session = await self._start_avatar(self.avatar_name)
                await self._start_session(session)
                self.released = False
            finally:
                self._switching = False
                self._wake.set()
        log.info(
            "room %s: the host is back after its pause on voice %s, avatar %s",
            self.room_name,
            self.voice_name,
            self.avatar_name,
        )
        self._on_change()
        self._report_fallbacks()
        return True

    async def count_avatar_minutes(self) -> None:
        """A paid avatar's minutes as they pass, so the daily cap sees them in time."""
        while not self._stopped.is_set():
            await asyncio.sleep(self.config.cost.check_interval_s)
            self.metering.avatar_tick()

    # ---- the end ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the session, take the avatar out, release the voice (each bounded)."""
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
        if self.guard is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.guard.aclose(), 3)
