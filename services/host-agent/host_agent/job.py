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
   - `chat.removed.<room>` since `HOST_MEMORY_S` ago: a removed message is never answered
     (before or after it arrives) and leaves the context;
   - `chat.approved.<room>` since `HOST_MEMORY_S` ago (context; the brain answers only what is
     not stale and not answered);
   - `stage.visual.<room>` from the last one (relayed to the room's stage topic, and sent to
     every viewer who joins later);
   - `host.control.<room>` new commands only (an old `say` must never be replayed).
4. Loop: ask the brain, carry out `Speak` / `Interrupt`, publish each finished turn on
   `host.spoken.<room>`, keep the host's state in its participant attributes.
5. End when no viewer has been in the room for `HOST_EMPTY_GRACE_S` (`viewers_left`), on worker
   shutdown (`shutdown`), when an operator ends the show (`operator`), or when something breaks
   (`crashed`): close the session, take the avatar out, publish `ended` with the reason, shut
   the job down.

Ending the show (`livestage.shows`): the job follows `room.show.<room>` (new events) from its
start and reads the room's show record in Redis once it follows it; an ended show (then or
later, waiting for a viewer or live) ends the job with reason `operator`, closing every paid
session (the `AgentSession` with OpenAI Realtime or the pipeline, the Anam avatar session). Going
live, the job writes the room's daily cap (`HOST_COST_DAILY_CAP_USD`) where the operator's console
reads it (`spend_cap_key`).

Pause release (`release.py`): a pause held `HOST_PAUSE_RELEASE_S` closes the session and the
avatar session but keeps the job (`released`); `resume`, or a `say`, rebuilds them (`rebuilt`).

Handing over (`handover.py`): a draining worker sends `handover` naming this job on
`host.control.<room>` (followed from the job's start, so a job still waiting for its viewer
hears it too and ends at once). The brain then says nothing new; a turn not yet heard is cut
(nothing of it is lost), a turn being heard goes on to its end (at most `HOST_DRAIN_TIMEOUT_S`
less `HANDOVER_TEARDOWN_S`) and is published on `host.spoken`; then the job ends with reason
`shutdown` and the room goes to another worker. Operator commands that come before the host
is live are acted on as it goes live (a `say` is spoken first).

Falling back instead of going dark (`switcher.py`): when a production backend fails while live
(the session's unrecoverable `error` event, the Anam avatar leaving or dropping its video, the
daily spend cap), the `AgentSession` is rebuilt on the local backend of that kind; the brain,
the NATS subscriptions and whatever backend did not fail carry over, and a turn that lost every
word is tried again on the new voice.

Usage (`host_agent.metering`): tokens and seconds from the sessions' usage, a paid avatar's
minutes, priced from `HOST_COST_*`, exported as metrics, counted against the room's daily cap
in Redis, and summed in the `ended` event's `usage`.

Captions: the session's transcription output (`lk.transcription` text streams from the host's
identity) is synchronised with the audio playout (word timings from the local TTS), so the pages
show the words as they are heard.

What the host says is checked before anyone hears it (`output_guard.py`, in the nodes of the
session's `agent.HostAgent`): the model's text a sentence at a time before the voice has it, an
operator's `say` before the brain queues it, OpenAI Realtime's transcript as it streams (a block
cuts the turn). A blocked sentence is never spoken, captioned or published on `host.spoken`.

The parts: `presence.py` (viewers and the avatar coming and going, the wait and the grace),
`switcher.py` (the voice, the avatar and their session; going live, falling back, closing),
`turns.py` (speaking, interrupting, following each turn to `host.spoken`) and `inputs.py` (the
wire's models as the brain's inputs, pure). This file wires them to the brain and NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Coroutine
from typing import Any

from livekit.agents import AutoSubscribe, JobContext
from livekit.agents.voice.events import CloseEvent
from opentelemetry import metrics as otel_metrics

from host_agent.attributes import STATE_ATTRIBUTE, HostAttributes, host_state
from host_agent.brain import HostBrain, Interrupt, Speak
from host_agent.config import JobConfig
from host_agent.extraction import make_extractor
from host_agent.handover import turn_budget_s
from host_agent.inputs import (
    comment_from_chat,
    said_from_spoken,
    screen_from_visual,
    visual_expired,
)
from host_agent.metering import Metering
from host_agent.persona import Persona, PersonaError, find_persona, load_persona
from host_agent.presence import RoomPresence
from host_agent.recall import Callback
from host_agent.release import PauseRelease
from host_agent.remembering import Remembering
from host_agent.show import persona_file
from host_agent.switcher import BackendSwitcher, chosen_voice
from host_agent.turns import Turns
from livestage import metrics, subjects
from livestage.bus import Bus, BusUnavailable, Observed, Watch
from livestage.kv import connect_redis
from livestage.schemas import (
    ChatMessage,
    ChatRemoval,
    HostCommand,
    HostJobEvent,
    ShowConfigEvent,
    ShowEvent,
    SpokenTurn,
    StageVisual,
    WireModel,
    new_id,
    now_ms,
)
from livestage.shows import ShowStore, spend_cap_key

log = logging.getLogger(__name__)

SHOW_CHANGE_OVERLAP_S = 10.0
"""The job follows `room.config.<room>` from this long before it started (the show was read at
dispatch, just before): a change in between is not lost; one already read is skipped."""

SETTLE_MEMORY_S = 2.0
"""At the end, how long the memory work under way (the last batch's facts) may finish."""

__all__ = ["STATE_ATTRIBUTE", "HostJob", "JobConfig", "host_state"]


class HostJob:
    def __init__(self, ctx: JobContext, config: JobConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.room_name = subjects.check_room(ctx.room.name)
        self.clock = config.clock
        self._counter = functools.partial(metrics.counter, meter=config.meter)
        self.persona: Persona = load_persona(persona_file(config, self.room_name))
        self.brain = HostBrain(self.persona.name, config.brain_config(), self.clock)
        self.bus: Bus | None = None
        self.visual: StageVisual | None = None
        self.stop_reason: str | None = None
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._watches: list[Watch] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seen_commands: set[str] = set()
        self._task: asyncio.Task[str] | None = None
        self._ready = False
        self._handover_deadline: float | None = None
        self.release = PauseRelease(config.host.pause_release_s)
        self.redis = connect_redis(config.redis, timeout_s=2.0, retries=1)
        """The room's show record and spend cap (never the job's life: errors are logged)."""
        """Handing over: when the turn under way is cut if it has not ended (clock time)."""
        self.extractor = make_extractor(
            config.memory,
            voice=chosen_voice(config),
            pipeline=config.pipeline,
            openai_settings=config.openai,
            meter=config.meter,
        )
        """A model that reads facts from a viewer's batch; None: the offline rules."""
        self.remembering = Remembering(
            config.memory,
            config.show,
            self.redis,
            room=self.room_name,
            extractor=self.extractor,
            extract_timeout_s=config.memory.extract_timeout_s + 1.0,
            clock=self.clock,
            meter=config.meter,
            batch_window_s=config.host.batch_window_s,
            present=lambda identity: self.presence.present(identity),
        )
        """The memory of regulars (#21): bounded, in the background, never in the way."""
        self.attributes = HostAttributes(ctx.room, self._spawn)
        self.metering = Metering(
            self.room_name, config, lambda spent: self.switcher.spend_cap_reached(spent)
        )
        self.presence = RoomPresence(
            ctx.room,
            clock=self.clock,
            grace_s=config.host.empty_grace_s,
            on_viewer_joined=self._on_viewer_joined,
            on_participant_lost=lambda *lost: self.switcher.avatar_lost(*lost),
            on_disconnected=lambda: self._stop("room_closed"),
            wake=self._wake,
        )
        self.turns = Turns(
            ctx.room,
            self.brain,
            self.metering,
            clock=self.clock,
            meter=config.meter,
            persona=lambda: self.persona,
            agent=lambda: self.switcher.agent,
            publish=self._publish_spoken,
            on_change=self._refresh_attributes,
            wake=self._wake,
            spawn=self._spawn,
            memory=self.remembering.snippets,
        )
        self.switcher = BackendSwitcher(
            ctx.room,
            config,
            self.persona,
            self.metering,
            self.turns,
            stopped=self._stopped,
            wake=self._wake,
            spawn=self._spawn,
            on_change=self._refresh_attributes,
            on_closed=self._on_session_close,
            on_fallback=lambda reason: self._spawn(self._publish_job("fallback", reason)),
        )

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
        # a change made while the show was being read is replayed; older ones are skipped
        config_since = time.time() - SHOW_CHANGE_OVERLAP_S
        try:
            self.bus = await Bus.connect(self.config.nats, f"host-agent {self.room_name}")
            await self.bus.ensure_streams()
            # commands are followed before the job says it started (from a time: "new" can
            # skip), so one sent on hearing `started` (a handover) is never missed
            self._watches.append(
                await self.bus.watch(
                    subjects.host_control(self.room_name),
                    HostCommand,
                    self._on_command,
                    start=time.time(),
                )
            )
            await self._publish_job("started")
            self._watches.append(
                await self.bus.watch(subjects.room_show(self.room_name), ShowEvent, self._on_show)
            )
            # what changed since the show was read at dispatch (from a time: "new" can skip)
            self._watches.append(
                await self.bus.watch(
                    subjects.room_config(self.room_name),
                    ShowConfigEvent,
                    self._on_show_config,
                    start=config_since,
                )
            )
            await self._check_show()
            self.presence.follow()
            if not await self.presence.wait_for_viewer(
                self.config.host.viewer_wait_s, self._stopped
            ):
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

    def _stop(self, reason: str) -> None:
        """End the job (the first reason given stands)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopped.set()
        self._wake.set()

    async def _on_shutdown(self, reason: str) -> None:
        self._stop("shutdown")
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 8)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()

    def _on_session_close(self, event: CloseEvent) -> None:
        log.info("room %s: agent session closed (%s)", self.room_name, event.reason)
        if self.stop_reason is None and event.error is not None:
            log.error("room %s: the agent session failed: %r", self.room_name, event.error)
        # we never close the session ourselves before teardown: a clean close comes from the
        # framework shutting the job down (worker stop), whatever reason it names
        self._stop("crashed" if event.error is not None else "shutdown")

    async def _check_show(self) -> None:
        """An operator ended the show before this job started (a dispatch already on its way):
        end at once. Redis away: the show counts as live (the event still ends it)."""
        try:
            async with asyncio.timeout(3):
                show = await ShowStore(self.redis).get(self.room_name)
        except Exception as error:  # noqa: BLE001 - Redis or its timeout: carry on, logged
            log.warning("room %s: show state unknown (%r); going on", self.room_name, error)
            return
        if show.ended:
            log.info("room %s: the show has ended; this job ends at once", self.room_name)
            self._stop("operator")

    async def _on_show(self, observed: Observed[ShowEvent]) -> None:
        if observed.model.room == self.room_name and observed.model.state == "ended":
            log.info("room %s: the operator ended the show; ending the job", self.room_name)
            self._stop("operator")

    async def _on_show_config(self, observed: Observed[ShowConfigEvent]) -> None:
        """The show changed: a new persona applies at once; backends and the cap at the next
        job (`host_agent.show`). A deleted show ends by its `ShowEvent`."""
        show, known = observed.model.config, self.config.show
        if observed.model.room != self.room_name or show is None:
            return
        if known is not None and show.updated_at <= known.updated_at:
            return  # what the job was started with, or older
        before = known.persona if known is not None else None
        self.config = dataclasses.replace(self.config, show=show)
        if show.persona != before:
            await self._use_persona(load_persona(persona_file(self.config, self.room_name)))
            self._refresh_attributes()
            self._wake.set()

    # ---- going live -------------------------------------------------------------------------

    async def _write_spend_cap(self) -> None:
        try:
            async with asyncio.timeout(3):
                await self.redis.set(spend_cap_key(self.room_name), self.metering.cap_usd)
        except Exception as error:  # noqa: BLE001 - only the console reads it: logged
            log.warning("room %s: daily cap not written (%r)", self.room_name, error)

    async def _go_live(self) -> None:
        # the show run starts now: the viewers already here are looked up while going live
        early = self.remembering.went_live(int(self.clock() * 1000))
        here = sorted(set(early) | self.presence.viewers)  # those here before it followed too
        welcomes = [self.remembering.spawn(self._welcome(identity)) for identity in here]
        await self.switcher.go_live()
        await self._write_spend_cap()
        log.info(
            "room %s live: voice %s, avatar %s, persona %s",
            self.room_name,
            self.switcher.voice_name,
            self.switcher.avatar_name,
            self.persona.name,
        )
        bus = self.bus
        assert bus is not None
        room = self.room_name
        since = self.clock() - self.config.host.memory_s
        for observed in await bus.history(subjects.host_spoken(room), SpokenTurn, since=since):
            self.brain.observe_spoken(said_from_spoken(observed.model))
        self._watches += [
            await bus.watch(
                subjects.stage_visual(room), StageVisual, self._on_visual, start="last"
            ),
            # removals first, so one stored before its message is heard before it
            await bus.watch(
                subjects.chat_removed(room), ChatRemoval, self._on_removed, start=since
            ),
            await bus.watch(subjects.chat_approved(room), ChatMessage, self._on_chat, start=since),
            await bus.watch(subjects.host_spoken(room), SpokenTurn, self._on_spoken),
        ]
        if welcomes:  # bounded reads: a regular's callback becomes the first greeting
            await asyncio.wait(welcomes)
        self.brain.went_live()
        self._ready = True
        self._refresh_attributes()  # "idle" only once every command and message is heard
        self._spawn(self.switcher.count_avatar_minutes())
        await self._publish_job("live")

    # ---- the live loop ----------------------------------------------------------------------

    async def _live(self) -> str:
        while True:
            if self._stopped.is_set():
                return self.stop_reason or "shutdown"
            now = self.clock()
            if self.brain.handing_over and self._handed_over(now):
                return "shutdown"
            if self.presence.grace_over(now):
                log.info(
                    "room %s: no viewer for %.0f s; ending the job",
                    self.room_name,
                    self.presence.grace_s,
                )
                return "viewers_left"
            if self.release.due(now, speaking=self.turns.current is not None):
                await self._release()
                continue
            if self.switcher.switching:  # a backend is being replaced: decide on the new session
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.5)
                continue
            for callback in self.remembering.due(self._fresh_authors()):
                self._welcome_back(callback)
            decision = self.brain.decide()
            if isinstance(decision, Speak):
                if self.switcher.released:  # a `say` while released: the session comes back
                    await self._rebuild()
                    if self.brain.paused:  # and goes again once the pause is held anew
                        self.release.paused(self.clock())
                session, voice = self.switcher.session, self.switcher.voice
                assert session is not None and voice is not None
                self.turns.speak(decision.plan, session, voice)
                continue
            if isinstance(decision, Interrupt):
                self.turns.interrupt(self.switcher.session, decision.cause)
                continue
            deadlines = [
                t
                for t in (
                    self.brain.next_wakeup(),
                    self.presence.grace_deadline(),
                    self._handover_deadline,
                    self.remembering.next_wakeup(),
                    None if self.switcher.released else self.release.deadline(),
                )
                if t is not None
            ]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _release(self) -> None:
        self.release.resumed()  # one release per held pause: a `say` starts the count again
        if await self.switcher.release():
            await self._publish_job("released", "paused")

    async def _rebuild(self) -> None:
        if await self.switcher.rebuild():
            await self._publish_job("rebuilt")

    def _hand_over(self) -> None:
        """The worker is draining: finish what is being heard, say nothing new, then end."""
        if self.brain.handing_over:
            return
        budget = turn_budget_s(self.config.host.drain_timeout_s)
        log.info(
            "room %s: the worker is draining; handing the room over after the turn under way "
            "(at most %.0f s)",
            self.room_name,
            budget,
        )
        self.brain.hand_over()
        self._handover_deadline = self.clock() + budget
        if not self._ready:
            self._stop("shutdown")  # not live yet: nothing is being said
        self._wake.set()

    def _handed_over(self, now: float) -> bool:
        """While handing over: True once every turn is finished and published. A turn not yet
        heard is cut at once; one being heard is cut only when it outlasts the drain."""
        if self.brain.handed_over and self.turns.all_done:
            return True
        overdue = self._handover_deadline is not None and now >= self._handover_deadline
        turn = self.turns.current
        if turn is not None and not turn.handle.interrupted and (overdue or not self.turns.heard):
            self.turns.interrupt(self.switcher.session, "shutdown")
        # else a turn is ending or being published: its end wakes the loop
        return overdue

    def _refresh_attributes(self) -> None:
        if not self._ready:
            return  # no state before every subscription is up: "idle" means "listening"
        agent_state = self.switcher.agent_state
        self.attributes.show(
            state=host_state(
                paused=self.brain.paused,
                agent_state=agent_state,
                planning=self.turns.current is not None and agent_state != "speaking",
            ),
            persona=self.persona.name,
            voice=self.switcher.voice_name,
            avatar=self.switcher.avatar_name,
        )

    # ---- NATS -------------------------------------------------------------------------------

    async def _on_chat(self, observed: Observed[ChatMessage]) -> None:
        comment = comment_from_chat(observed.model, self.room_name, observed.stored_at)
        if comment is not None and self.brain.observe_chat(comment):
            self._wake.set()
        if comment is not None:  # approved only: a rejected message is never remembered
            question = comment.is_question or comment.body.rstrip().endswith("?")
            self.remembering.spawn(self.remembering.heard(observed.model, question=question))

    async def _on_removed(self, observed: Observed[ChatRemoval]) -> None:
        # an operator (or the platform's own moderators, through chat-bridge) removed it
        if observed.model.room == self.room_name:
            self.brain.removed(observed.model.message_id)
            self._wake.set()

    async def _on_spoken(self, observed: Observed[SpokenTurn]) -> None:
        # another job in this room (a restart racing this one) spoke: never answer it again
        if not self.turns.is_own(observed.model.id):
            self.brain.observe_spoken(said_from_spoken(observed.model))
        if observed.model.room == self.room_name and observed.model.reply_to:
            self.remembering.spawn(self.remembering.answered(observed.model))

    async def _on_visual(self, observed: Observed[StageVisual]) -> None:
        visual = observed.model
        if visual.room != self.room_name:
            return
        if visual_expired(visual, now_ms()):
            log.info("room %s: skipping expired visual %s", self.room_name, visual.id)
            return
        if self.visual is not None and self.visual.id == visual.id:
            return
        self.visual = visual
        self.brain.observe_visual(screen_from_visual(visual))
        await self._send_visual(visual)
        self._wake.set()

    def _on_viewer_joined(self, identity: str) -> None:
        if self.visual is not None and self.switcher.session is not None:
            self._spawn(self._send_visual(self.visual, to=[identity]))
        self.remembering.spawn(self._welcome(identity))

    def _fresh_authors(self) -> list[str]:
        return [comment.author_identity for comment in self.brain.fresh()]

    async def _welcome(self, identity: str) -> None:
        """A viewer joined: a returning regular may be greeted with a callback."""
        callback = await self.remembering.joined(identity, self._fresh_authors())
        if callback is not None:
            self._welcome_back(callback)

    def _welcome_back(self, callback: Callback) -> None:
        if self.brain.welcome_back(callback):
            self.remembering.called_back(callback)
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
        if command.action == "handover":  # from a draining worker, naming the job it ends
            if command.text == self.ctx.job.id:
                self._hand_over()
            return
        log.info("room %s: operator command %s", self.room_name, command.action)
        if command.action == "pause":
            self.brain.pause()
            self.release.paused(self.clock())
            self.turns.interrupt(self.switcher.session, "skip")
        elif command.action == "resume":
            self.brain.resume()
            self.release.resumed()
            if self.switcher.released:
                self._spawn(self._rebuild())
        elif command.action == "skip":
            self.turns.interrupt(self.switcher.session, "skip")
        elif command.action == "say":
            guard = self.switcher.guard
            self.brain.say(await guard.filter_say(command.text) if guard else command.text)
            self.release.spoke(self.clock())
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
        await self._use_persona(persona)

    async def _use_persona(self, persona: Persona) -> None:
        self.persona = persona
        self.brain.set_host_name(persona.name)
        await self.switcher.set_persona(persona)
        log.info("room %s: persona is now %s", self.room_name, persona.name)

    async def _publish(self, subject: str, model: WireModel, what: str) -> None:
        """Publish on NATS; a bus that is down is logged, never fatal to the job."""
        if self.bus is None:
            return
        try:
            await self.bus.publish(subject, model)
        except BusUnavailable as error:
            log.warning("room %s: could not publish %s: %s", self.room_name, what, error)

    async def _publish_spoken(self, spoken: SpokenTurn) -> None:
        await self._publish(subjects.host_spoken(self.room_name), spoken, "what the host said")

    async def _publish_job(self, event: str, reason: str = "") -> None:
        usage: dict[str, float] = {"speaking_s": round(self.turns.speaking_s, 3)}
        usage["turns"] = float(self.turns.spoken)
        if self.switcher.fallbacks:
            usage["fallbacks"] = float(self.switcher.fallbacks)
        usage |= self.metering.summary()
        job_event = HostJobEvent(
            id=new_id(),
            room=self.room_name,
            job_id=self.ctx.job.id,
            event=event,  # type: ignore[arg-type]
            reason=reason,
            voice=self.switcher.voice_name,
            avatar=self.switcher.avatar_name,
            usage=usage if event == "ended" else {},
            created_at=now_ms(),
        )
        await self._publish(subjects.host_job(self.room_name), job_event, f"job {event}")

    # ---- the end ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _teardown(self, reason: str) -> None:
        log.info("room %s: host job ending (%s)", self.room_name, reason)
        self.presence.stop()
        for watch in self._watches:
            await watch.stop()
        self._stopped.set()
        await self.switcher.close()
        for task in list(self._tasks):
            task.cancel()
        await self.remembering.settle(SETTLE_MEMORY_S)
        if self.extractor is not None:
            with contextlib.suppress(Exception):
                await self.extractor.aclose()
        with contextlib.suppress(Exception):
            await self.metering.aclose()
        self._counter(metrics.AGENT_JOBS_ENDED).add(1, {"reason": reason})
        await self._publish_job("ended", reason)
        if self.bus is not None:
            await self.bus.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        provider = otel_metrics.get_meter_provider()
        flush = getattr(provider, "force_flush", None)
        if callable(flush):
            with contextlib.suppress(Exception):
                flush(timeout_millis=2000)
