"""The stage producer on real NATS, the real capture browser and the real asset server:
rooms with viewers get visuals, rooms without get none, chat moves the topic, operator
commands work, and both backdrop makers (drawn, and Gemini through its API double) produce an
asset and a visual."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from livestage import subjects
from livestage.bus import Bus
from livestage.safety import TextSafety
from livestage.schemas import (
    ChatMessage,
    HistoryReply,
    HistoryRequest,
    PresenceEvent,
    ShowEvent,
    StageCommand,
    StageVisual,
    new_id,
    now_ms,
)
from livestage.settings import GeminiSettings, NatsSettings
from stage_producer.app import StageService
from stage_producer.assets import AssetSigner, AssetStore
from stage_producer.backdrops import BACKDROPS, BackdropMaker
from stage_producer.backdrops.base import Backdrop, BackdropRequest
from stage_producer.backdrops.procedural import ProceduralBackdrops
from stage_producer.capture.browser import CaptureBrowser
from stage_producer.gemini import Gemini
from stage_producer.lease import RoomLeases, lease_bucket
from stage_producer.producer import VisualFactory
from stage_producer.search import SearchProvider, Source, SourcesFile, SourcesSearch
from stage_producer.server import AssetServer, create_asset_app
from stage_producer.settings import DEFAULT_SOURCES_FILE, StageSettings
from stage_producer.topics.keywords import KeywordPicker
from tests.doubles.base import Fault
from tests.doubles.gemini import GeminiDouble
from tests.support.waiting import until

from .conftest import FixedSearch

pytestmark = pytest.mark.browser
VIEWER = "viewer_abcdef12_0123abcd"


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Stage:
    service: StageService
    bus: Bus
    http: httpx.AsyncClient
    clock: FakeClock
    room: str

    async def fetch(self, visual: StageVisual) -> httpx.Response:
        return await self.http.get(visual.url)

    @contextlib.asynccontextmanager
    async def watch(self, room: str | None = None) -> AsyncIterator[Watcher]:
        """Subscribed to the room's stage.visual subject before the block runs."""
        watcher = Watcher()

        async def got(msg: Any) -> None:
            watcher.queue.put_nowait(StageVisual.from_json(msg.data))

        sub = await self.bus.nc.subscribe(subjects.stage_visual(room or self.room), cb=got)
        await self.bus.nc.flush()
        try:
            yield watcher
        finally:
            await sub.unsubscribe()


class Watcher:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[StageVisual] = asyncio.Queue()

    async def next(self, within: float = 60) -> StageVisual:
        async with asyncio.timeout(within):
            return await self.queue.get()


StageFactory = Callable[..., Awaitable[Stage]]


@pytest.fixture
async def make_stage(
    nats_server, capture_browser: CaptureBrowser, text_safety: TextSafety, tmp_path: Path
) -> AsyncIterator[StageFactory]:  # type: ignore[no-untyped-def]
    made: list[tuple[StageService, Bus, httpx.AsyncClient, AssetServer]] = []

    async def make(
        backdrops: BackdropMaker | None = None,
        nats_url: str | None = None,
        search: SearchProvider | None = None,
        commands_durable: str | None = None,
        leases_in: str | None = None,
        **settings: Any,
    ) -> Stage:
        defaults: dict[str, Any] = {
            "asset_dir": tmp_path / "assets",
            "http_port": 0,
            "check_interval_s": 0.2,
            "min_gap_s": 0,
            "replay_window_s": 0.001,
            "unsafe_allow_loopback_for_tests": True,
        }
        config = StageSettings(**{**defaults, **settings})
        bus = await Bus.connect(NatsSettings(url=nats_url or nats_server.url), "stage-test")
        await bus.ensure_streams()
        store = AssetStore(config.asset_dir, max_total_bytes=1 << 30, max_asset_bytes=1 << 24)
        signer = AssetSigner(b"test-asset-key-0123456789abcdef")
        server = await AssetServer(create_asset_app(store, signer), "127.0.0.1", 0).start()
        sources = SourcesFile.load(DEFAULT_SOURCES_FILE)
        clock = FakeClock()
        factory = VisualFactory(
            browser=capture_browser,
            backdrops=backdrops or ProceduralBackdrops(),
            search=search or SourcesSearch(sources),
            store=store,
            signer=signer,
            ttl_s=config.visual_ttl_s,
            clock=clock,
            safety=text_safety,
        )
        leases = None
        if leases_in is not None:  # one of several replicas, sharing this lease bucket
            kv = await lease_bucket(bus.js, config.lease_ttl_s, leases_in)
            leases = RoomLeases(kv, ttl_s=config.lease_ttl_s, renew_s=config.lease_renew_s)
        service = StageService(
            config, bus, factory, KeywordPicker(), sources, clock=clock,
            commands_durable=commands_durable or "cmd-" + uuid.uuid4().hex[:8], leases=leases,
        )  # fmt: skip
        await service.start()
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False)
        made.append((service, bus, http, server))
        return Stage(service, bus, http, clock, "room-" + uuid.uuid4().hex[:10])

    yield make
    for service, bus, http, server in made:
        await service.stop()
        await bus.close()
        await http.aclose()
        await server.close()


def presence(
    room: str, event: str, identity: str = VIEWER, kind: str = "standard"
) -> PresenceEvent:
    return PresenceEvent(
        id=new_id(), room=room, event=event, identity=identity,  # type: ignore[arg-type]
        participant_kind=kind, created_at=now_ms(),  # type: ignore[arg-type]
    )  # fmt: skip


def chat(room: str, body: str) -> ChatMessage:
    return ChatMessage(
        id=new_id(), room=room, author_identity=VIEWER, author_name="Ada", avatar="fox",
        body=body, kind="viewer", created_at=now_ms(),
    )  # fmt: skip


def command(room: str, action: str, **fields: str) -> StageCommand:
    return StageCommand(id=new_id(), room=room, action=action, created_at=now_ms(), **fields)  # type: ignore[arg-type]


async def assert_serves_image(stage: Stage, visual: StageVisual) -> Image.Image:
    response = await stage.fetch(visual)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (1280, 720)
    return image


async def test_a_room_with_a_viewer_gets_visuals_and_a_room_without_gets_none(make_stage) -> None:  # type: ignore[no-untyped-def]
    stage = await make_stage()
    quiet = "room-" + uuid.uuid4().hex[:10]
    async with stage.watch() as visuals:
        agent = presence(quiet, "participant_joined", "agent-x", "agent")
        await stage.bus.publish(subjects.room_presence(quiet), agent)
        viewer = presence(stage.room, "participant_joined")
        await stage.bus.publish(subjects.room_presence(stage.room), viewer)
        visual = await visuals.next()
    assert visual.room == stage.room and visual.kind == "screenshot"
    assert visual.title == "The northern lights" and visual.topic == "Northern lights"
    assert visual.source_url == "http://pages.livestage.invalid/aurora.html"
    assert "oxygen glows green" in visual.summary
    assert visual.url.startswith("/media/") and "sig=" in visual.url
    await assert_serves_image(stage, visual)
    assert quiet not in stage.service.loops
    assert not stage.service.tracker.is_active(quiet)

    await stage.bus.publish(
        subjects.room_presence(stage.room), presence(stage.room, "participant_left")
    )
    async with asyncio.timeout(10):
        while stage.room in stage.service.loops or stage.service.factory.browser.running:  # noqa: ASYNC110 - the follow callback stops both
            await asyncio.sleep(0.05)


def show(room: str, state: str) -> ShowEvent:
    return ShowEvent(id=new_id(), room=room, state=state, created_at=now_ms())  # type: ignore[arg-type]


async def test_an_ended_show_gets_no_visual_until_it_starts_again(make_stage) -> None:  # type: ignore[no-untyped-def]
    stage = await make_stage(backdrop_every=1)
    service, browser = stage.service, stage.service.factory.browser
    async with stage.watch() as visuals:
        await stage.bus.publish(
            subjects.room_presence(stage.room), presence(stage.room, "participant_joined")
        )
        first = await visuals.next()
    assert first.room == stage.room

    await stage.bus.publish(subjects.room_show(stage.room), show(stage.room, "ended"))
    async with asyncio.timeout(10):
        # the room's loop stops with its viewer still there, and Chromium is closed
        while stage.room in service.loops or browser.running:  # noqa: ASYNC110 - the follow callback stops both
            await asyncio.sleep(0.05)
    assert not service.tracker.is_active(stage.room)
    other = presence(stage.room, "participant_joined", "viewer_bbbbbbbb_0123abcd")
    await stage.bus.publish(subjects.room_presence(stage.room), other)
    # an operator's backdrop for the ended room is dropped (pin and unpin still work)
    assert await service.handle_command(command(stage.room, "backdrop", prompt="Mars")) is None

    stage.clock.now += 3600  # whatever the plan's interval: a visual is due at once
    async with stage.watch() as visuals:
        await stage.bus.publish(subjects.room_show(stage.room), show(stage.room, "live"))
        again = await visuals.next()
    assert again.room == stage.room and again.id != first.id
    assert stage.room in service.loops and service.tracker.viewers(stage.room) == 2
    async with asyncio.timeout(10):
        while not browser.running:  # noqa: ASYNC110 - warmed in the background
            await asyncio.sleep(0.05)


async def test_a_restart_learns_an_ended_show_from_the_stream(make_stage, fresh_nats) -> None:  # type: ignore[no-untyped-def]
    nats = fresh_nats()
    room = "room-" + uuid.uuid4().hex[:10]
    bus = await Bus.connect(NatsSettings(url=nats.url), "before-restart")
    await bus.ensure_streams()
    await bus.publish(subjects.room_presence(room), presence(room, "participant_joined"))
    await bus.publish(subjects.room_show(room), show(room, "live"))
    await bus.publish(subjects.room_show(room), show(room, "ended"))
    await bus.close()
    stage = await make_stage(nats_url=nats.url, replay_window_s=600, backdrop_every=1)
    async with asyncio.timeout(10):
        while not stage.service.tracker.show_ended(room):  # noqa: ASYNC110 - replayed in the background
            await asyncio.sleep(0.05)
    assert not stage.service.tracker.is_active(room) and room not in stage.service.loops


async def test_rooms_are_relearned_from_the_stream_after_a_restart(make_stage, fresh_nats) -> None:  # type: ignore[no-untyped-def]
    nats = fresh_nats()
    room = "room-" + uuid.uuid4().hex[:10]
    bus = await Bus.connect(NatsSettings(url=nats.url), "before-restart")
    await bus.ensure_streams()
    await bus.publish(subjects.room_presence(room), presence(room, "participant_joined"))
    await bus.close()
    bus = await Bus.connect(NatsSettings(url=nats.url), "watcher")
    async with Stage(None, bus, None, None, room).watch() as visuals:  # type: ignore[arg-type]
        await make_stage(nats_url=nats.url, replay_window_s=600, backdrop_every=1)
        visual = await visuals.next()
    await bus.close()
    assert visual.room == room and visual.kind == "backdrop"


async def test_chat_moves_the_topic_and_history_is_asked_first(make_stage) -> None:  # type: ignore[no-untyped-def]
    stage = await make_stage(backdrop_every=1)  # backdrops only: fast, and the topic still shows
    service, room = stage.service, stage.room
    first = await service.step(room)
    assert first is not None and first.topic == "Northern lights"
    assert await service.step(room) is None  # not due, nothing new in chat

    # chat-history is not running: chat seen on chat.approved counts
    for body in ["the deep sea is wild", "anglerfish in the deep sea!", "ocean creatures glow"]:
        await stage.bus.publish(subjects.chat_approved(room), chat(room, body))
    async with asyncio.timeout(10):
        while len(service.memory[room].chat) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    shifted = await service.step(room)
    assert shifted is not None and shifted.topic == "Deep sea"

    # with chat-history answering, its answer is what counts
    asked: list[HistoryRequest] = []

    async def history(msg: Any) -> None:
        asked.append(HistoryRequest.from_json(msg.data))
        reply = HistoryReply(
            messages=[
                chat(room, t)
                for t in ["mars rover!", "perseverance on mars", "olympus mons on mars"]
            ]
        )
        await msg.respond(reply.to_json())

    sub = await stage.bus.nc.subscribe(subjects.history_recent(room), cb=history)
    try:
        moved = await service.step(room)
    finally:
        await sub.unsubscribe()
    assert asked and asked[0].room == room
    assert moved is not None and moved.topic == "Mars"


async def test_operator_commands_capture_backdrop_pin_and_unpin(make_stage, test_site: str) -> None:  # type: ignore[no-untyped-def]
    stage = await make_stage()
    service, room = stage.service, stage.room
    async with stage.watch() as visuals:
        # through NATS and the durable consumer, as the edge sends it
        capture = command(room, "capture", url=f"{test_site}/index.html")
        await stage.bus.publish(subjects.stage_command(room), capture)
        captured = await visuals.next()
    assert captured.kind == "screenshot" and captured.source_url == f"{test_site}/index.html"
    assert captured.title == "Local test page"
    await assert_serves_image(stage, captured)

    drawn = await service.handle_command(command(room, "backdrop", prompt="Penguins on an iceberg"))
    assert (
        drawn is not None and drawn.kind == "backdrop" and drawn.title == "Penguins on an iceberg"
    )

    refused = await service.handle_command(
        command(room, "capture", url="http://169.254.169.254/latest/")
    )
    assert refused is None

    stale = command(room, "backdrop", prompt="Old news").model_copy(
        update={"created_at": now_ms() - 10 * 60_000}
    )
    assert await service.handle_command(stale) is None  # older than STAGE_COMMAND_MAX_AGE_S

    await service.handle_command(command(room, "pin", visual_id=captured.id))
    assert service.plan(room).pinned == captured
    stage.clock.now += 700  # within the last quarter of the visual's 900 s: re-signed now
    refreshed = await service.step(room)
    assert refreshed is not None and service.plan(room).pinned == refreshed
    assert refreshed.title == captured.title and refreshed.id != captured.id
    assert refreshed.url.split("?")[0] == captured.url.split("?")[0]  # same asset...
    assert refreshed.expires_at == captured.expires_at + 700_000  # ...signed for later
    stage.clock.now += 3600
    assert (await service.step(room)).id != refreshed.id  # type: ignore[union-attr]
    unpin = command(room, "unpin").model_copy(update={"created_at": int(stage.clock.now * 1000)})
    await service.handle_command(unpin)
    after = await service.step(room)
    assert after is not None and after.id != captured.id


class SlowBackdrops(ProceduralBackdrops):
    """A drawn backdrop that takes `hold_s` (a slow capture or encode), or less if a second
    call arrives meanwhile (the command was handed out again: no need to wait any longer)."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.calls: list[str] = []
        self.again = asyncio.Event()

    async def make(self, request: BackdropRequest) -> Backdrop:
        self.calls.append(request.prompt)
        if len(self.calls) > 1:
            self.again.set()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.again.wait(), self.hold_s)
        return await super().make(request)


async def test_a_command_slower_than_the_ack_wait_is_run_once(make_stage) -> None:  # type: ignore[no-untyped-def]
    # Two replicas share the command consumer (as in a deployment with two stage producers):
    # a command outlasting its ack wait without progress acks would be handed to the other.
    slow = SlowBackdrops(hold_s=0)
    durable = "cmd-" + uuid.uuid4().hex[:8]
    fast = {"capture_timeout_s": 0.8, "commands_durable": durable, "backdrops": slow}
    stage = await make_stage(**fast)
    await make_stage(**fast)
    ack_wait_s = stage.service.command_ack_wait_s()
    assert ack_wait_s == pytest.approx(2.4)
    slow.hold_s = 3 * ack_wait_s  # three ack waits: without progress acks, redelivered
    async with stage.watch() as visuals:
        backdrop = command(stage.room, "backdrop", prompt="A slow sunrise")
        await stage.bus.publish(subjects.stage_command(stage.room), backdrop)
        visual = await visuals.next(within=slow.hold_s + 30)
    assert visual.kind == "backdrop" and visual.title == "A slow sunrise"
    assert slow.calls == ["A slow sunrise"]  # made once, by one replica
    async with asyncio.timeout(10):  # the ack follows the publish
        consumer_info = stage.bus.js.consumer_info
        while (info := await consumer_info(subjects.STAGE.name, durable)).num_ack_pending:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert info.delivered.consumer_seq == 1  # one delivery in all: never handed out again


async def test_pins_reach_the_replica_that_holds_the_room(fresh_nats, make_stage) -> None:  # type: ignore[no-untyped-def]
    # Two replicas share the command consumer and the lease bucket; A holds the room's lease and
    # runs its loop, B follows the same viewer but may not run it. Every pin and unpin, whichever
    # replica JetStream hands it to first, must end on A's plan (B does not even know the visual).
    nats = fresh_nats()  # only this test's rooms: B replays their presence
    shared = {
        "nats_url": nats.url,
        "replay_window_s": 600,
        "backdrop_every": 1,
        "commands_durable": "cmd-" + uuid.uuid4().hex[:8],
        "leases_in": "test-leases-" + uuid.uuid4().hex[:8],
        "lease_ttl_s": 30,  # never lapses while the test runs, however loaded the machine
        "lease_renew_s": 1,
    }
    a = await make_stage(**shared)
    room = a.room
    async with a.watch(room) as visuals:
        await a.bus.publish(subjects.room_presence(room), presence(room, "participant_joined"))
        shown = await visuals.next()
    b = await make_stage(**shared)
    await until(lambda: b.service.tracker.is_active(room), 10, "B to learn the room's viewer")
    a_leases, b_leases = a.service.leases, b.service.leases
    assert a_leases is not None and b_leases is not None
    assert a_leases.holds(room) and not b_leases.holds(room)  # A published: its loop runs
    assert room not in b.service.loops

    a_plan, b_plan = a.service.plan(room), b.service.plan(room)
    for _ in range(5):  # if either replica took them, all 11 would reach A by chance: 1 in 2048
        await a.bus.publish(subjects.stage_command(room), command(room, "pin", visual_id=shown.id))
        await until(lambda: a_plan.pinned == shown, 30, "the pin to reach the room's holder")
        await a.bus.publish(subjects.stage_command(room), command(room, "unpin"))
        await until(lambda: a_plan.pinned is None, 30, "the unpin to reach the room's holder")
    await a.bus.publish(subjects.stage_command(room), command(room, "pin", visual_id=shown.id))
    await until(lambda: a_plan.pinned == shown, 30, "the pin to reach the room's holder")
    assert b_plan.pinned is None

    # What the viewer is owed: the pinned visual holds the screen (re-signed as it runs out)
    # where it would otherwise give way to a new one.
    async with a.watch(room) as visuals:
        a.clock.now += 700
        held = await visuals.next()
    assert held.id != shown.id and held.title == shown.title
    assert held.url.split("?")[0] == shown.url.split("?")[0]


def backdrop_maker(name: str, double: GeminiDouble) -> BackdropMaker:
    """The backdrop maker `name` as the service builds it, with a key for the Gemini double."""
    gemini = Gemini.from_settings(
        GeminiSettings(
            api_key=SecretStr(double.api_key),
            base_url=double.url,
            image_model="gemini-2.5-flash-image",
        )
    )
    return BACKDROPS.build(name, StageSettings(), gemini, SourcesFile.load(DEFAULT_SOURCES_FILE))


@pytest.mark.parametrize("maker", ["procedural", "gemini"])
async def test_backdrops_produce_an_asset_and_a_visual(
    make_stage, maker: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    double = await GeminiDouble().start()
    try:
        stage = await make_stage(backdrops=backdrop_maker(maker, double))
        async with stage.watch() as visuals:
            backdrop = command(stage.room, "backdrop", prompt="Volcanoes at night")
            await stage.bus.publish(subjects.stage_command(stage.room), backdrop)
            visual = await visuals.next()
        assert visual.kind == "backdrop" and visual.title == "Volcanoes at night"
        image = await assert_serves_image(stage, visual)
        image.save(tmp_path / f"{maker}.png")
        if maker == "gemini":
            assert len(double.calls) == 1
            sent = double.calls[0]
            assert sent.model == "gemini-2.5-flash-image" and sent.api_key == double.api_key
            assert sent.body["generationConfig"]["responseModalities"] == ["IMAGE"]
            assert "Volcanoes at night" in sent.prompt and "No text" in sent.prompt
            assert "generated picture" in visual.summary
            # the double's picture (a blue gradient with a yellow disc) is what was stored
            assert image.getpixel((900, 340))[2] < 150 and image.getpixel((900, 340))[0] > 200
        else:
            assert double.calls == []
            assert "drawn backdrop" in visual.summary
    finally:
        await double.stop()


async def test_a_failing_gemini_backdrop_falls_back_to_a_drawn_one(make_stage) -> None:  # type: ignore[no-untyped-def]
    double = await GeminiDouble(fault=Fault.HTTP_500).start()
    try:
        stage = await make_stage(backdrops=backdrop_maker("gemini", double))
        visual = await stage.service.handle_command(command(stage.room, "backdrop", prompt="Rain"))
        assert visual is not None and "drawn backdrop" in visual.summary
        assert double.calls
    finally:
        await double.stop()


# --- what the stage shows is checked -----------------------------------------------------------

BAD_WORDS = ("fuck", "f.u.c.k", "sh1t", "shit", "bullshit")


def assert_clean(visual: StageVisual) -> None:
    shown = f"{visual.title} {visual.summary} {visual.topic}".lower()
    assert not [word for word in BAD_WORDS if word in shown], visual


@pytest.mark.parametrize(
    "page",
    [
        "offensive-title",
        "offensive-description",
        "offensive-text",
        "offensive-short-line",
        "lying-offensive",
    ],
)
async def test_an_operator_capture_of_an_offensive_page_never_reaches_the_screen(
    make_stage, test_site: str, page: str, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    stage = await make_stage()
    async with stage.watch() as visuals:
        for action in [
            command(stage.room, "capture", url=f"{test_site}/{page}.html"),
            command(stage.room, "backdrop", prompt="Volcanoes at night"),  # a marker after it
        ]:
            await stage.bus.publish(subjects.stage_command(stage.room), action)
        first = await visuals.next()
    # Commands run in order: the page was dropped, so the backdrop is the first visual.
    assert first.kind == "backdrop" and first.title == "Volcanoes at night"
    dropped = [r.getMessage() for r in caplog.records if "failed the" in r.getMessage()]
    assert dropped and "check" in dropped[0]
    assert not [w for w in BAD_WORDS if w in dropped[0].lower().split(f"{page}.html")[-1]]


async def test_the_loop_drops_an_offensive_page_and_shows_the_topic_instead(
    make_stage, test_site: str
) -> None:  # type: ignore[no-untyped-def]
    """A search result leads to a page whose real title is offensive while its scripts say
    otherwise: the published visual is a backdrop named after the topic; nothing of the page
    (its title, the search result's title, its text) reaches the screen or the host."""
    lying = Source(f"{test_site}/lying-offensive.html", "Calm tea", kind="screenshot")
    stage = await make_stage(search=FixedSearch([lying]), backdrop_every=0)
    async with stage.watch() as visuals:
        await stage.service.step(stage.room)
        visual = await visuals.next()
    assert visual.kind == "backdrop" and visual.topic == "Northern lights"
    assert visual.title == "Northern lights"  # not the search result's title
    assert_clean(visual)
    assert "tea" not in visual.summary.lower()

    bad_result = Source(f"{test_site}/index.html", "Total bullshit", "Sh1t summary")
    stage.service.factory.search = FixedSearch([bad_result])
    stage.service.plan(stage.room).pinned = None
    stage.clock.now += 3600
    async with stage.watch() as visuals:
        await stage.service.step(stage.room)
        visual = await visuals.next()
    assert visual.kind == "backdrop"
    assert_clean(visual)


async def test_a_chat_topic_that_fails_the_checks_is_skipped(make_stage) -> None:  # type: ignore[no-untyped-def]
    stage = await make_stage(backdrop_every=1)
    service, room = stage.service, stage.room
    for body in ["total bullshit here", "bullshit all day", "bullshit again", "bullshit!!"]:
        await stage.bus.publish(subjects.chat_approved(room), chat(room, body))
    async with asyncio.timeout(10):
        while len(service.memory[room].chat) < 4:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    visual = await service.step(room)
    assert visual is not None and visual.topic == "Northern lights"  # the catalog's turn
    assert_clean(visual)
    # the same chat without the word does make a topic of its own (the check is what skipped it)
    for body in ["kittens here", "kittens all day", "kittens again", "kittens!!", "kittens?"]:
        await stage.bus.publish(subjects.chat_approved(room), chat(room, body))
    async with asyncio.timeout(10):
        while len(service.memory[room].chat) < 9:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stage.clock.now += 3600
    moved = await service.step(room)
    assert moved is not None and moved.topic == "Kittens"


async def test_a_backdrop_never_takes_an_offensive_search_result_title(make_stage) -> None:  # type: ignore[no-untyped-def]
    bad_result = Source("http://pages.livestage.invalid/aurora.html", "Total bullshit")
    stage = await make_stage(search=FixedSearch([bad_result]), backdrop_every=1)
    visual = await stage.service.step(stage.room)
    assert visual is not None and visual.kind == "backdrop"
    assert visual.title == "Northern lights"
    assert_clean(visual)
