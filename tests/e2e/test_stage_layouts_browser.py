"""Stage layouts, the host's look, the ended show and the phone page, in Debian's Chromium
(Playwright) against a real edge, livekit-server, NATS and Redis.

- The operator switches the layout through `POST /api/operator/stage/layout`: the viewer page and
  `/stage` follow; in `corner` and `side` the visual's box and the host's box do not meet; a page
  opened later starts in the current layout.
- A host video on a green screen is keyed; one without the key colour is framed.
- A `ShowEvent` sent to the room puts "The show has ended" over both pages (and `live` takes it
  away); a page opened while the show is ended shows it at once.
- At 390x844 (a phone) with 200 messages in the history, the stage and the chat input are both
  in the viewport, the chat list scrolls inside the page, which does not grow.

Screenshots of what the tests saw are written to `$TMPDIR/livestage-screenshots/` to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc
from PIL import Image, ImageDraw, ImageFont
from playwright.async_api import Browser, BrowserContext, FloatRect, Locator, Page, expect

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ShowEvent, StageVisual, new_id, now_ms
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.e2e.test_chat_browser import join
from tests.support.browser import WEB_DIST
from tests.support.bus import connected_bus
from tests.support.chat import backend_env, chat_message, chat_services
from tests.support.livekit_helpers import feed_solid_color, leave, mint_token
from tests.support.livekit_helpers import join as join_room
from tests.support.media import MediaServer, serving

pytestmark = pytest.mark.browser

OPERATOR_SECRET = "layouts-operator-secret-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_SECRET}"}
STAGE_TOPIC = "anam-stage-visual"
SIGNED = "?exp=4000000000&sig=" + "f" * 64
SHOTS = Path(tempfile.gettempdir()) / "livestage-screenshots"
FOLLOW_WITHIN_MS = 3_000  # the issue asks for a second; the slack is for a loaded 2-core machine


def northern_lights_png() -> bytes:
    """A 1280x720 visual whose title sits at its top, as the aurora page's did."""
    image = Image.new("RGB", (1280, 720), (18, 40, 60))
    draw = ImageDraw.Draw(image)
    for y in range(200, 720, 8):
        draw.line([(0, y), (1280, y - 120)], fill=(40, 160 + (y % 80), 120), width=4)
    draw.text(
        (60, 40), "The northern lights", fill=(255, 255, 255), font=ImageFont.load_default(72)
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with serving(northern_lights_png(), "image/png") as server:
        yield server


@contextlib.asynccontextmanager
async def host_video(
    livekit_server: Any, room: str, identity: str, rgb: tuple[int, int, int]
) -> AsyncIterator[rtc.Room]:
    """An avatar participant publishing one solid colour as its camera (green: a green screen)."""
    token = mint_token(livekit_server, identity, room, can_publish=True)
    lk_room = await join_room(livekit_server, token)
    source = rtc.VideoSource(320, 180)
    track = rtc.LocalVideoTrack.create_video_track("avatar", source)
    feeding = asyncio.create_task(feed_solid_color(source, 320, 180, rgb, fps=15))
    try:
        await lk_room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        )
        yield lk_room
    finally:
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        await leave(lk_room)


def northern_lights_visual(room: str) -> StageVisual:
    """The backdrop `northern_lights_png` as a stage visual (its media from `media`, through the
    edge's `/media/`)."""
    return StageVisual(
        id=new_id(),
        room=room,
        kind="backdrop",
        url=f"/media/{'a' * 64}.png{SIGNED}",
        title="The northern lights",
        created_at=now_ms(),
        expires_at=now_ms() + 600_000,
    )


async def send_visual(edge: Any) -> StageVisual:
    """`northern_lights_visual` sent straight to the room's pages (as the host relays it)."""
    visual = northern_lights_visual(edge.room)
    await edge.services.gateway.send_to_room(edge.room, STAGE_TOPIC, visual.to_json())
    return visual


async def box(locator: Locator) -> FloatRect:
    found = await locator.bounding_box()
    assert found is not None, f"{locator} has no box (not displayed)"
    return found


def overlap(a: FloatRect, b: FloatRect) -> float:
    """The area two boxes share (0 when they only touch)."""
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return max(0.0, width) * max(0.0, height)


def inside(inner: FloatRect, outer: FloatRect, slack: float = 1.0) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


async def open_stage(context: BrowserContext, base_url: str) -> Page:
    page = await context.new_page()
    await page.goto(base_url + "/stage?width=960&height=540&captions=1")
    await expect(page.locator("#stage")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def test_layouts_follow_the_operator_keep_host_and_visual_apart_and_reach_late_joiners(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    livekit_server: Any,
    media: MediaServer,
) -> None:
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(
        web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET, stage_media_url=media.url
    )
    await edge.wait_for_bus()
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    dialogs: list[str] = []
    try:
        viewer = await join(context, edge.base_url, "Ada", dialogs)
        stage = await open_stage(context, edge.base_url)
        pages = {"viewer": viewer, "stage": stage}
        for page in pages.values():  # the default, from config
            await expect(page.locator("#stage")).to_have_attribute("data-layout", "corner")

        async with host_video(livekit_server, edge.room, "avatar-host", (0, 255, 0)):
            visual = await send_visual(edge)
            for page in pages.values():
                await expect(page.locator("#stage-visual")).to_have_attribute(
                    "data-visual-id", visual.id, timeout=15_000
                )
                await expect(page.locator("#stage")).to_have_attribute(
                    "data-host", "avatar-host", timeout=15_000
                )
                # a green screen: keyed
                await expect(page.locator("#stage")).to_have_attribute(
                    "data-host-look", "keyed", timeout=15_000
                )

            followed_ms: list[float] = []
            for layout in ("side", "center", "visual-only", "host-only", "corner"):
                started = time.monotonic()
                response = await edge.client.post(
                    "/api/operator/stage/layout", json={"layout": layout}, headers=OPERATOR
                )
                assert response.status_code == 200, response.text
                for name, page in pages.items():
                    await expect(page.locator("#stage"), name).to_have_attribute(
                        "data-layout", layout, timeout=FOLLOW_WITHIN_MS
                    )
                followed_ms.append((time.monotonic() - started) * 1000)
                for name, page in pages.items():
                    stage_box = await box(page.locator("#stage"))
                    if layout in ("corner", "side"):
                        visual_box = await box(page.locator("#stage-visual"))
                        image_box = await box(page.locator("#stage-visual img.visible"))
                        host_box = await box(page.locator("#stage-canvas"))
                        assert overlap(visual_box, host_box) == 0, (name, layout)
                        assert overlap(image_box, host_box) == 0, (name, layout)
                        assert inside(host_box, stage_box) and inside(visual_box, stage_box)
                        if layout == "corner":  # lower right, about 45% of the stage's height
                            assert 0.4 <= host_box["height"] / stage_box["height"] <= 0.5
                            assert (
                                host_box["x"] + host_box["width"]
                                >= stage_box["x"] + stage_box["width"] - 2
                            )
                            assert (
                                host_box["y"] + host_box["height"]
                                >= stage_box["y"] + stage_box["height"] - 2
                            )
                        else:  # a full-height column
                            assert host_box["height"] >= stage_box["height"] - 2
                        await shot(page, f"layout-{layout}-{name}")
                    elif layout == "visual-only":
                        await expect(page.locator("#stage-canvas")).to_be_hidden()
                        await expect(page.locator("#stage-visual")).to_be_visible()
                    elif layout == "host-only":
                        await expect(page.locator("#stage-visual")).to_be_hidden()
                        assert inside(stage_box, await box(page.locator("#stage-canvas")))
            print(f"pages followed the layout route in {[round(ms) for ms in followed_ms]} ms")

            # a page opened now starts in the current layout (from config)
            await edge.client.post(
                "/api/operator/stage/layout", json={"layout": "side"}, headers=OPERATOR
            )
            await expect(stage.locator("#stage")).to_have_attribute("data-layout", "side")
            late = await open_stage(context, edge.base_url)
            await expect(late.locator("#stage")).to_have_attribute("data-layout", "side")

            # an avatar without the key colour (an Anam avatar in a room) comes first: framed
            async with host_video(livekit_server, edge.room, "anam-avatar-host", (70, 60, 90)):
                for page in (viewer, late):
                    await expect(page.locator("#stage")).to_have_attribute(
                        "data-host", "anam-avatar-host", timeout=15_000
                    )
                    await expect(page.locator("#stage")).to_have_attribute(
                        "data-host-look", "framed", timeout=15_000
                    )
                await shot(viewer, "framed-side-viewer")
                # in `center` a framed host keeps to a box: never an opaque rectangle over the stage
                await edge.client.post(
                    "/api/operator/stage/layout", json={"layout": "center"}, headers=OPERATOR
                )
                await expect(viewer.locator("#stage")).to_have_attribute("data-layout", "center")
                host_box = await box(viewer.locator("#stage-canvas"))
                stage_box = await box(viewer.locator("#stage"))
                assert (
                    host_box["width"] * host_box["height"]
                    < 0.25 * stage_box["width"] * stage_box["height"]
                )
                # back to the green screen: keyed again
            for page in (viewer, late):
                await expect(page.locator("#stage")).to_have_attribute(
                    "data-host-look", "keyed", timeout=15_000
                )
        assert dialogs == []
    finally:
        await context.close()


async def test_the_ended_show_is_said_over_both_pages_live_and_at_load(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
) -> None:
    edge = await make_edge(web_dist=WEB_DIST)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    dialogs: list[str] = []

    async def tell(state: str) -> None:
        event = ShowEvent(id=new_id(), room=edge.room, state=state, created_at=now_ms())  # type: ignore[arg-type]
        await edge.services.gateway.send_to_room(
            edge.room, edge.services.topics.stage_topic, event.to_json()
        )

    try:
        viewer = await join(context, edge.base_url, "Ada", dialogs)
        stage = await open_stage(context, edge.base_url)
        pages = (viewer, stage)
        for page in pages:
            await expect(page.locator("#show-ended")).to_be_hidden()
        await tell("ended")
        for page in pages:
            await expect(page.locator("#stage")).to_have_attribute(
                "data-show", "ended", timeout=10_000
            )
            await expect(page.locator("#show-ended")).to_have_text("The show has ended")
            await expect(page.locator("#show-ended")).to_be_visible()
            assert inside(await box(page.locator("#show-ended")), await box(page.locator("#stage")))
        await shot(viewer, "ended-viewer")
        await tell("live")
        for page in pages:
            await expect(page.locator("#show-ended")).to_be_hidden(timeout=10_000)
            await expect(page.locator("#stage")).to_have_attribute("data-show", "live")

        # ended in the show record: a page opened now says so before anyone joins
        await edge.services.shows.end(edge.room)
        fresh = await context.new_page()
        await fresh.goto(edge.base_url + "/")
        await expect(fresh.locator("#show-ended")).to_be_visible(timeout=10_000)
        fresh_stage = await context.new_page()
        await fresh_stage.goto(edge.base_url + "/stage?width=640&height=360")
        await expect(fresh_stage.locator("#show-ended")).to_be_visible(timeout=10_000)
        assert dialogs == []
    finally:
        await context.close()


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(
        backend_env(nats_server, redis_server, livekit_server), moderation=False
    ) as processes:
        yield processes


async def test_on_a_phone_the_stage_and_the_input_stay_in_view_and_the_chat_scrolls(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    nats_server: Any,
    chat_path: dict[str, Any],
) -> None:
    edge = await make_edge(web_dist=WEB_DIST)
    await edge.wait_for_bus()
    room = edge.room
    async with connected_bus(nats_server, "phone-history-test") as bus:
        await fill_history(bus, room, 200)
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    dialogs: list[str] = []
    try:
        page = await join(context, edge.base_url, "Ada", dialogs)
        newest = page.locator(".chat-message .chat-body", has_text="message number 200")
        await expect(newest).to_have_count(1, timeout=20_000)
        await expect(newest).to_be_in_viewport()
        viewport = {"x": 0.0, "y": 0.0, "width": 390.0, "height": 844.0}
        assert inside(await box(page.locator("#stage")), viewport)
        assert inside(await box(page.locator("#chat-input")), viewport)
        await expect(page.locator("#chat-input")).to_be_in_viewport()
        sizes = await page.locator("#chat-list").evaluate(
            "(list) => ({scroll: list.scrollHeight, client: list.clientHeight})"
        )
        assert sizes["scroll"] > sizes["client"], sizes
        document_height = await page.evaluate("document.documentElement.scrollHeight")
        assert document_height <= 844 + 2, document_height
        # the chat keeps at least a third of the screen
        assert (await box(page.locator("#chat-list")))["height"] >= 844 / 3
        await shot(page, "phone-viewer")
        # typing keeps the input where it is (the page does not scroll the stage away)
        stage_before = await box(page.locator("#stage"))
        await page.locator("#chat-input").fill("hello from a phone")
        assert await box(page.locator("#stage")) == stage_before
        assert await page.evaluate("window.scrollY") == 0
        assert dialogs == []
    finally:
        await context.close()


async def fill_history(bus: Bus, room: str, count: int) -> None:
    """`count` approved messages, stored by the real chat-history (oldest first)."""
    start = now_ms() - count * 1000
    for n in range(1, count + 1):
        message = chat_message(
            room, (f"message number {n} " + "words " * (n % 7)).strip(), created_at=start + n
        )
        await bus.publish(subjects.chat_approved(room), message)
