"""Wiring of the stage producer: NATS in and out, one loop per room with viewers, operator
commands, the asset server, the egress proxy and the warm browser.

- Rooms: `room.presence.*` and `host.job.*`, replayed from the last `STAGE_REPLAY_WINDOW_S` at
  start (so a restart knows who is watching) and then followed live. A room's loop runs while it
  has viewers and is cancelled when the last one leaves.
- Shows: `room.show.*` from the last event of each room (this service has no Redis; JetStream's
  last-per-subject is the show's state as long as the ROOM stream keeps it), then live. An ended
  show stops the room's loop whatever its viewers, and operator captures and backdrops for it
  are dropped, until the show is live again. With no room active the capture browser
  (Chromium) is closed; it is launched again when a room becomes active or a capture needs it.
- Show configurations: the last `room.config.*` event of each room, read before anything else,
  then followed live (`shows.ShowStages`): each show's topics, search provider and backdrops.
- Replicas: every replica follows every room, but a room's loop runs only on the replica that
  holds the room's lease (`lease.py`, a NATS KV bucket); when that replica dies the lease lapses
  and another takes the room within `STAGE_LEASE_TTL_S` + `STAGE_LEASE_RENEW_S`.
- Each loop, every `STAGE_CHECK_INTERVAL_S`: recent chat (`history.recent.<room>`, or what this
  process saw on `chat.approved.<room>` when chat-history does not answer) and recent talk
  (`host.spoken.<room>`) go to the topic picker (only when something new was said); the room's
  plan decides whether a visual is due; the factory makes it; it is published on
  `stage.visual.<room>`.
- Operator commands: a durable consumer of `stage.command.*` (capture a URL, draw a backdrop for
  a prompt, pin or unpin a visual). Commands older than `STAGE_COMMAND_MAX_AGE_S` are dropped.
  While one runs, work-in-progress acks (every third of the ack wait) keep JetStream from
  handing it to another replica, so a slow capture is never made twice. A replica that gets a
  command for a room whose lease another replica holds hands it back (nak with a short delay,
  `hand_back_delay_s`) until the holder gets it: a pin, an unpin or a capture lands on the
  plan of the loop that runs the room. A room nobody holds (no viewers anywhere) is handled by
  whoever gets the command (its plan keeps a pin for when the room starts there). A command
  still not taken on its last delivery is dead-lettered. A pin is also kept in the NATS KV
  bucket `stage-pins` (`pins.py`; lifted on unpin and when the show ends): a replica that
  starts a room's loop puts the pinned visual back on screen, so a pin survives the room
  moving.

Nothing here waits on the host, and the host never waits on this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from livestage import metrics, subjects
from livestage.bus import Bus, BusUnavailable, Consumer, Delivery, HandBack, Observed, Watch
from livestage.safety import TextSafety
from livestage.schemas import (
    ChatMessage,
    HistoryReply,
    HistoryRequest,
    HostJobEvent,
    PresenceEvent,
    ShowConfigEvent,
    ShowEvent,
    SpokenTurn,
    StageCommand,
    StageVisual,
)
from livestage.service import connect_bus
from livestage.settings import GeminiSettings, SafetySettings, derive

from .assets import AssetSigner, AssetStore
from .backdrops import BACKDROPS
from .capture.browser import CaptureBrowser, CaptureError, CaptureOptions
from .content import first_blocked
from .egress.proxy import EgressProxy
from .gemini import Gemini
from .lease import RELEASE_WITHIN_S, RoomLeases, lease_bucket
from .pins import Pins, pin_bucket
from .planner import PlanSettings, RoomPlan
from .producer import VisualFactory
from .rooms import RoomTracker
from .search import SEARCH_PROVIDERS, SourcesFile, SourcesFileError
from .server import AssetServer, create_asset_app
from .settings import PACKAGE_DIR, StageSettings
from .shows import ShowStages
from .topics import TOPIC_PICKERS, TopicChoice, TopicContext, TopicPicker, Utterance

log = logging.getLogger(__name__)

SERVICE_NAME = "stage-producer"
COMMANDS_DURABLE = "stage-producer-commands"
PAGES_DIR = PACKAGE_DIR / "pages"
STOP_STEP_S = 5.0  # the longest one step of `StageService.stop` may take


def _stack(task: asyncio.Task[Any]) -> str:
    frames = task.get_stack()
    return "".join(f"  {f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}\n" for f in frames)


_audience: list[RoomTracker] = []
"""The tracker the audience gauges read: this process's running service (gauges once)."""


def export_audience(tracker: RoomTracker) -> None:
    """Export `livestage.rooms.active` and `livestage.viewers` from `tracker` (the stage
    producer is the one service that follows every room's presence and jobs)."""
    if _audience:
        _audience[0] = tracker
        return
    _audience.append(tracker)
    metrics.gauge(metrics.ROOMS_ACTIVE, lambda: [(float(len(_audience[0].active_rooms())), {})])
    metrics.gauge(metrics.VIEWERS, lambda: [(float(_audience[0].total_viewers()), {})])


@dataclass
class _RoomMemory:
    chat: deque[ChatMessage] = field(default_factory=lambda: deque(maxlen=200))
    talk: deque[SpokenTurn] = field(default_factory=lambda: deque(maxlen=50))
    visuals: OrderedDict[str, StageVisual] = field(default_factory=OrderedDict)
    picked_for: tuple[str, str] | None = None  # (newest chat id, newest talk id) last picked on
    last_choice: TopicChoice | None = None


class StageService:
    """The running stage producer (everything but process setup)."""

    def __init__(
        self,
        settings: StageSettings,
        bus: Bus,
        factory: VisualFactory,
        picker: TopicPicker,
        sources: SourcesFile,
        *,
        clock: Callable[[], float] = time.time,
        commands_durable: str = COMMANDS_DURABLE,
        gemini: Gemini | None = None,
        leases: RoomLeases | None = None,
        pins: Pins | None = None,
    ) -> None:
        self.settings = settings
        self.commands_durable = commands_durable
        self.bus = bus
        self.factory = factory
        self.picker = picker
        self.sources = sources
        self.clock = clock
        self.shows = ShowStages(
            settings, gemini or Gemini.from_settings(GeminiSettings()), sources, factory
        )
        self.tracker = RoomTracker()
        self.plan_settings = derive(PlanSettings, settings)
        self.plans: dict[str, RoomPlan] = {}
        self.memory: dict[str, _RoomMemory] = {}
        self.loops: dict[str, asyncio.Task[None]] = {}
        self.published: asyncio.Queue[StageVisual] | None = None  # tests may watch this
        self._watches: list[Watch] = []
        self._command_task: asyncio.Task[None] | None = None
        self._commands: Consumer[StageCommand] | None = None
        self._stopping = asyncio.Event()
        self._chores: set[asyncio.Task[None]] = set()
        # None: this is the only replica, it runs every active room.
        self.leases = leases
        # None: a pin lives in this process's plan only (one replica, or tests).
        self.pins = pins
        self._lease_task: asyncio.Task[None] | None = None
        if leases is not None:
            leases.on_change = self._sync_loops

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def plan(self, room: str) -> RoomPlan:
        return self.plans.setdefault(room, RoomPlan(self.plan_settings))

    def _memory(self, room: str) -> _RoomMemory:
        return self.memory.setdefault(room, _RoomMemory())

    # --- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        now = self.clock()
        replay_from = now - self.settings.replay_window_s
        talk_from = now - self.settings.talk_window_s
        watch = self.bus.watch
        # Every show's stage in hand before any room's loop can start (a watch delivers later);
        # then followed from the time of that read (a change in between is applied twice).
        configs_read_at = time.time()
        for observed in await self.bus.latest(
            subjects.all_rooms("room", "config"), ShowConfigEvent
        ):
            self.shows.apply(observed.model)
        self._watches = [
            await watch(
                subjects.all_rooms("room", "presence"),
                PresenceEvent,
                self._on_presence,
                start=replay_from,
            ),
            await watch(
                subjects.all_rooms("host", "job"), HostJobEvent, self._on_job, start=replay_from
            ),
            await watch(subjects.all_rooms("room", "show"), ShowEvent, self._on_show, start="last"),
            await watch(
                subjects.all_rooms("room", "config"),
                ShowConfigEvent,
                self._on_show_config,
                start=configs_read_at,
            ),
            await watch(
                subjects.all_rooms("host", "spoken"), SpokenTurn, self._on_spoken, start=talk_from
            ),
            await watch(
                subjects.all_rooms("chat", "approved"), ChatMessage, self._on_chat, start=talk_from
            ),
        ]
        consumer = await self.bus.consumer(
            subjects.all_rooms("stage", "command"),
            StageCommand,
            self.commands_durable,
            only_new=True,
            backoff_s=(self.command_ack_wait_s(),),
            # A command is retried while it is still worth carrying out: after
            # STAGE_COMMAND_MAX_AGE_S it would be dropped as stale, so it is dead-lettered then.
            budget_s=min(self.bus.settings.retry_budget_s, self.settings.command_max_age_s),
        )
        self._commands = consumer
        if self.leases is not None:
            self._lease_task = asyncio.create_task(self.leases.run(self._stopping), name="leases")
        self._command_task = asyncio.create_task(
            consumer.run(self._on_command, batch=1, stop=self._stopping)
        )

    async def stop(self) -> None:
        # The command consumer stops on its event, not by a cancel: a cancel landing inside a
        # fetch can be lost in nats-py (see `Consumer.run`) and the service would never stop.
        # It sees the event within one fetch timeout (1 s); a command still being handled then
        # (a capture) is cancelled.
        self._stopping.set()
        command_task = self._command_task
        if command_task is not None:
            await asyncio.wait({command_task}, timeout=2.5)
        if self._lease_task is not None:
            # It releases every lease held on the event: the other replica takes over at once.
            _, stuck_leases = await asyncio.wait({self._lease_task}, timeout=RELEASE_WITHIN_S + 0.5)
            for task in stuck_leases:
                task.cancel()
        # Every step is bounded: a stop that waits forever on one stuck piece (an unsubscribe
        # NATS does not answer, a chore inside Playwright) would outlast a Procfile runner's
        # patience and leave the process to be killed with nothing logged about why.
        for running in self._watches:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_STEP_S):
                    await running.stop()
        tasks = [
            *self.loops.values(),
            *self._chores,
            *([command_task] if command_task is not None and not command_task.done() else []),
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=STOP_STEP_S)
            for task in stuck:
                log.warning(
                    "stopping: task %s did not finish within %s s of its cancel; left behind:\n%s",
                    task.get_name(), STOP_STEP_S, _stack(task),
                )  # fmt: skip
        self.loops.clear()
        if self._commands is not None:
            # Before the drain in bus.close(): a pull subscription's queue never reports itself
            # drained, so the drain would wait out its timeout (and outlast a Procfile runner's
            # patience at `make run`'s Ctrl-C).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_STEP_S):
                    await self._commands.unsubscribe()
            self._commands = None

    # --- events ------------------------------------------------------------------------------

    async def _on_presence(self, observed: Observed[PresenceEvent]) -> None:
        self.tracker.apply_presence(observed.model)
        self._sync_loops()

    async def _on_job(self, observed: Observed[HostJobEvent]) -> None:
        self.tracker.apply_job(observed.model)
        self._sync_loops()

    async def _on_show(self, observed: Observed[ShowEvent]) -> None:
        event = observed.model
        if event.state == "ended" and self.tracker.is_active(event.room):
            log.info("room %s: the operator ended the show; no visuals until it starts", event.room)
        if event.state == "ended":
            await self._unpin(event.room)  # a show that starts again starts unpinned
        self.tracker.apply_show(event)
        self._sync_loops()

    async def _on_show_config(self, observed: Observed[ShowConfigEvent]) -> None:
        self.shows.apply(observed.model)
        memory = self.memory.get(observed.model.room)
        if memory is not None:  # a topic picked under the old topics is picked again
            memory.picked_for = memory.last_choice = None

    async def _on_spoken(self, observed: Observed[SpokenTurn]) -> None:
        self._memory(observed.model.room).talk.append(observed.model)

    async def _on_chat(self, observed: Observed[ChatMessage]) -> None:
        self._memory(observed.model.room).chat.append(observed.model)

    def _sync_loops(self) -> None:
        active = self.tracker.active_rooms()
        if self.leases is not None:
            self.leases.want(active)
            active = {room for room in active if self.leases.holds(room)}
        was_idle = not self.loops
        for room in active - set(self.loops):
            log.info("room %s has viewers: starting its stage loop", room)
            self.loops[room] = asyncio.create_task(self._room_loop(room), name=f"stage:{room}")
        for room in set(self.loops) - active:
            log.info(
                "room %s has no viewers (or its show ended, or its lease is elsewhere): "
                "stopping its stage loop",
                room,
            )
            self.loops.pop(room).cancel()
        browser = self.factory.browser
        if was_idle and self.loops:
            self._background(browser.start(), "warming the capture browser")
        elif not was_idle and not self.loops and browser.running:
            # Nobody watches anywhere: give the machine its memory back.
            self._background(browser.close_when_idle(), "closing the idle capture browser")

    def _background(self, work: Coroutine[Any, Any, object], what: str) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as error:  # noqa: BLE001 - logged; the next capture tries again
                log.warning("%s failed: %s", what, error)

        task = asyncio.create_task(run())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    # --- one room ----------------------------------------------------------------------------

    async def _room_loop(self, room: str) -> None:
        try:
            await self._restore_pin(room)
        except Exception:
            log.exception("room %s: restoring the stored pin failed; carrying on", room)
        while True:
            try:
                await self.step(room)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stage loop of room %s: one step failed; carrying on", room)
            await asyncio.sleep(self.settings.check_interval_s)

    async def _restore_pin(self, room: str) -> None:
        """A room starting here keeps the pin an operator set on the replica that ran it
        before: the pinned visual, re-signed, is published again and holds the screen."""
        if self.pins is None or self.plan(room).pinned is not None:
            return
        pinned = await self.pins.load(room)
        if pinned is None:
            return
        fresh = self.factory.reissue(pinned)
        self.plan(room).pin(fresh)
        log.info("room %s: the operator's pin (%s) holds here too", room, pinned.id)
        await self._publish(fresh, new=False)

    async def _pin(self, visual: StageVisual) -> None:
        self.plan(visual.room).pin(visual)
        if self.pins is not None:
            await self.pins.save(visual)

    async def _unpin(self, room: str) -> None:
        if (plan := self.plans.get(room)) is not None:
            plan.unpin()
        if self.pins is not None:
            await self.pins.clear(room)

    async def step(self, room: str) -> StageVisual | None:
        """One look at the room: publish a visual if one is due. Returns what it published."""
        plan = self.plan(room)
        if plan.pinned is not None:
            if plan.pinned_needs_refresh(self.now_ms()):
                fresh = self.factory.reissue(plan.pinned)
                plan.pin(fresh)
                await self._publish(fresh, new=False)
                return fresh
            return None
        choice = await self._pick(room, plan)
        decision = plan.decide(self.now_ms(), choice, self.shows.catalog(room))
        if decision is None:
            return None
        log.info(
            "room %s: %s visual about %r (%s)",
            room,
            decision.reason,
            decision.choice.topic,
            decision.choice.reason,
        )
        try:
            visual = await self.shows.factory(room).for_topic(room, decision.choice, plan)
        except (CaptureError, OSError, ValueError) as error:
            log.warning("room %s: no visual this time: %s", room, error)
            plan.failed(self.now_ms())
            return None
        await self._publish(visual)
        return visual

    async def _pick(self, room: str, plan: RoomPlan) -> TopicChoice | None:
        memory = self._memory(room)
        chat = await self._recent_chat(room)
        cutoff_ms = self.now_ms() - int(self.settings.talk_window_s * 1000)
        talk = [turn for turn in memory.talk if turn.ended_at >= cutoff_ms]
        key = (chat[-1].id if chat else "", talk[-1].id if talk else "")
        if key == memory.picked_for:
            return memory.last_choice
        context = TopicContext(
            chat=tuple(
                Utterance(m.body, m.created_at, m.author_name) for m in chat if m.kind == "viewer"
            ),
            talk=tuple(Utterance(t.text, t.ended_at, "host") for t in talk),
            current=plan.current_topic,
            catalog=self.shows.catalog(room),
            now_ms=self.now_ms(),
        )
        memory.last_choice = self._checked_topic(room, await self.picker.pick(context))
        memory.picked_for = key
        return memory.last_choice

    def _checked_topic(self, room: str, choice: TopicChoice | None) -> TopicChoice | None:
        """`choice`, unless it is not one of the show's topics, or came from chat and fails the
        content checks (then None: the plan goes on with its catalog). The sources file's
        topics are the operator's own."""
        if choice is not None and not self.shows.allows(room, choice):
            log.info("room %s: %r is not one of the show's topics; skipped", room, choice.topic)
            return None
        safety = self.factory.safety
        if choice is None or choice.catalog or safety is None:
            return choice
        blocked = first_blocked(safety, [("topic", choice.topic), ("search query", choice.query)])
        if blocked is None:
            return choice
        log.warning("room %s: skipping a topic picked from chat: %s", room, blocked.describe())
        return None

    async def _recent_chat(self, room: str) -> list[ChatMessage]:
        request = HistoryRequest(room=room, limit=self.settings.history_limit)
        try:
            reply = await self.bus.request(
                subjects.history_recent(room), request, HistoryReply, timeout_s=2.0
            )
            return list(reply.messages)
        except (BusUnavailable, ValueError) as error:
            log.debug("history.recent.%s did not answer (%s); using chat seen here", room, error)
            return list(self._memory(room).chat)[-self.settings.history_limit :]

    async def _publish(self, visual: StageVisual, *, new: bool = True) -> None:
        """Publish `visual`; `new=False` for a re-signed copy (it does not reset the schedule)."""
        await self.bus.publish(subjects.stage_visual(visual.room), visual)
        if new:
            self.plan(visual.room).made(visual, self.now_ms())
        visuals = self._memory(visual.room).visuals
        visuals[visual.id] = visual
        while len(visuals) > 100:
            visuals.popitem(last=False)
        log.info("room %s: published %s %r (%s)", visual.room, visual.kind, visual.title, visual.id)
        if self.published is not None:
            self.published.put_nowait(visual)

    # --- operator commands -------------------------------------------------------------------

    def command_ack_wait_s(self) -> float:
        """How long JetStream waits for a command's ack before handing it out again."""
        return float(self.settings.capture_timeout_s) * 3

    def hand_back_delay_s(self, delivery: int) -> float:
        """How long a command for a room held elsewhere waits before it is handed out again,
        after its `delivery`-th delivery: a quarter of the lease renew interval, doubling each
        time up to the lease TTL, so the deliveries left wait out a holder that died (its lease
        lapses within the TTL, then any replica takes the command)."""
        quarter = self.settings.lease_renew_s / 4
        return min(quarter * 2 ** max(delivery - 1, 0), self.settings.lease_ttl_s)

    async def _on_command(self, delivery: Delivery[StageCommand]) -> None:
        room = delivery.model.room
        if self.leases is not None and await self.leases.held_elsewhere(room):
            # Its loop (the pinned visual, the plan a capture joins) is on the holder.
            raise HandBack(
                f"room {room}'s stage lease is held by another replica",
                self.hand_back_delay_s(delivery.num_delivered),
            )
        # A capture, a clip's encode or a wait for a capture slot can outlast the ack wait:
        # progress acks keep the command ours, so it is never run (captured) twice.
        async with delivery.keep_alive(self.command_ack_wait_s() / 3):
            await self.handle_command(delivery.model)

    async def handle_command(self, command: StageCommand) -> StageVisual | None:
        age_s = (self.now_ms() - command.created_at) / 1000
        if age_s > self.settings.command_max_age_s:
            log.warning("dropping stage command %s: %.0f s old", command.id, age_s)
            return None
        room, plan = command.room, self.plan(command.room)
        if command.action == "unpin":
            await self._unpin(room)
            log.info("room %s: unpinned", room)
            return None
        if command.action == "pin":
            visual = self._memory(room).visuals.get(command.visual_id)
            if visual is None:
                log.warning(
                    "room %s: cannot pin %r: not a recent visual of this room",
                    room,
                    command.visual_id,
                )
                return None
            await self._pin(visual)
            log.info("room %s: pinned %s", room, visual.id)
            return None
        if self.tracker.show_ended(room):
            log.warning("room %s: dropping operator %s: the show has ended", room, command.action)
            return None
        factory = self.shows.factory(room)
        try:
            if command.action == "capture":
                visual = await factory.capture(room, command.url, command.kind)
            else:
                prompt = command.prompt.strip() or "Livestage"
                visual = await factory.backdrop(
                    room, topic=prompt, title=prompt[:80], prompt=prompt
                )
        except CaptureError as error:
            log.warning(
                "room %s: operator %s of %s refused or failed: %s",
                room,
                command.action,
                command.url[:200],
                error,
            )
            return None
        await self._publish(visual)
        if plan.pinned is not None:
            await self._pin(visual)  # the operator's newest choice holds the screen
        return visual


@dataclass
class StageRuntime:
    """Everything the process owns: proxy, browser, asset server, service."""

    settings: StageSettings
    proxy: EgressProxy
    browser: CaptureBrowser
    server: AssetServer
    factory: VisualFactory
    picker: TopicPicker
    sources: SourcesFile
    gemini: Gemini | None = None

    @classmethod
    async def create(
        cls,
        settings: StageSettings,
        gemini_settings: GeminiSettings | None = None,
        safety_settings: SafetySettings | None = None,
    ) -> StageRuntime:
        sources = SourcesFile.load(settings.sources_file)
        # The same offline checks as chat (MODERATION_* lists and threshold): loaded once.
        safety = await asyncio.to_thread(
            TextSafety.from_settings, safety_settings or SafetySettings()
        )
        gemini = Gemini.from_settings(gemini_settings or GeminiSettings())
        # The same policy and lists the edge checks an operator's capture URL against.
        domains = settings.domain_lists()
        policy = settings.egress_policy()
        if settings.unsafe_allow_loopback_for_tests:
            log.warning(
                "STAGE_UNSAFE_ALLOW_LOOPBACK_FOR_TESTS is on: captures may reach 127.0.0.1. "
                "Never use this setting outside tests."
            )
        proxy = await EgressProxy(
            policy, first_party_dir=PAGES_DIR, max_body_bytes=settings.egress_max_body_bytes
        ).start()
        browser = CaptureBrowser(
            CaptureOptions(
                chromium_path=settings.chromium_path,
                timeout_s=settings.capture_timeout_s,
                max_bytes=settings.capture_max_bytes,
                max_concurrent=settings.max_concurrent_captures,
                screenshot_format=settings.screenshot_format,
                quality=settings.screenshot_quality,
                clip_seconds=settings.clip_seconds,
                clip_fps=settings.clip_fps,
                clip_bitrate=settings.clip_bitrate,
                clip_max_scroll_px=settings.clip_max_scroll_px,
                encode_timeout_s=settings.clip_encode_timeout_s,
                sandbox=settings.chromium_sandbox,
            ),
            proxy,
        )
        try:
            await browser.sandbox()  # decided and logged once, at start (required: refuse here)
        except CaptureError:
            await proxy.close()
            raise
        store = AssetStore(
            settings.asset_dir,
            max_total_bytes=settings.asset_dir_max_bytes,
            max_asset_bytes=settings.asset_max_bytes,
        )
        signer = AssetSigner.from_settings(settings.asset_key)
        server = await AssetServer(
            create_asset_app(store, signer), settings.http_host, settings.http_port
        ).start()
        factory = VisualFactory(
            browser=browser,
            backdrops=BACKDROPS.build(settings.backdrop, settings, gemini, sources),
            search=SEARCH_PROVIDERS.build(settings.search, settings, gemini, sources),
            store=store,
            signer=signer,
            ttl_s=settings.visual_ttl_s,
            backdrop_size=(settings.backdrop_width, settings.backdrop_height),
            domains=domains,
            safety=safety,
        )
        picker = TOPIC_PICKERS.build(settings.topic_picker, settings, gemini, sources)
        log.info(
            "stage producer: topics=%s search=%s backdrops=%s assets=%s on http://%s:%d",
            picker.name,
            factory.search.name,
            factory.backdrops.name,
            settings.asset_dir,
            settings.http_host,
            server.port,
        )
        return cls(settings, proxy, browser, server, factory, picker, sources, gemini)

    async def close(self) -> None:
        await self.browser.close()
        await self.server.close()
        await self.proxy.close()


async def main(stop: asyncio.Event) -> None:
    settings = StageSettings()
    if settings.nice:
        # Background work: this process and the Chromium it starts (which inherits this) give
        # way to the host's voice and video when the CPU is short.
        os.nice(settings.nice)
    try:
        runtime = await StageRuntime.create(settings)
    except SourcesFileError as error:
        log.error("%s; fix the file or point STAGE_SOURCES_FILE elsewhere", error)
        raise SystemExit(2) from None
    except CaptureError as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    try:
        bus = await connect_bus(SERVICE_NAME, stop)
        if bus is None:
            return
        pins = Pins(await pin_bucket(bus.js))
        leases = RoomLeases(
            await lease_bucket(bus.js, settings.lease_ttl_s),
            ttl_s=settings.lease_ttl_s,
            renew_s=settings.lease_renew_s,
        )
        service = StageService(
            settings,
            bus,
            runtime.factory,
            runtime.picker,
            runtime.sources,
            gemini=runtime.gemini,
            leases=leases,
            pins=pins,
        )
        export_audience(service.tracker)
        try:
            await service.start()
            log.info("%s ready", SERVICE_NAME)
            await stop.wait()
        finally:
            await service.stop()
            await bus.close()
    finally:
        await runtime.close()
