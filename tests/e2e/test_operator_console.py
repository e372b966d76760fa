"""The operator console (`/operator`) in Debian's Chromium on the real stack, every action through
its controls and checked where viewers see it (a viewer page in a second browser context, and
`/stage`):

- chat (edge, moderation, chat-history, LiveKit, JetStream): a wrong secret is refused, the right
  one signs in; a viewer's line arrives with its outcome, the operator removes it (it vanishes
  from the viewer's page), bans the visitor (their next message is refused) and signs out. The
  secret is kept nowhere in the page.
- the show (plus a host worker on the OpenAI Realtime and Anam doubles, dispatched by the edge):
  the operator says a line (the viewer's captions show it), switches the layout to `corner` (the
  host's box leaves the visual and its title alone on the viewer page; `/stage`, the console's
  preview, follows), ends the show (the viewer sees it ended, `host.job` ends with reason
  `operator`, both doubles see their sessions closed) and starts it again (a host comes back).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, FloatRect, Locator, Page, Response, expect

from livestage import subjects
from livestage.identity import ANAM_AVATAR_IDENTITY
from livestage.schemas import ShowConfig, now_ms
from services.token.tests.conftest import Edge, EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.doubles.anam import AnamDouble
from tests.doubles.openai_realtime import OpenAIRealtimeDouble
from tests.e2e.test_chat_browser import join, say, shown
from tests.e2e.test_stage_layouts_browser import (  # noqa: F401 - `media` is a fixture
    box,
    media,
    northern_lights_visual,
    overlap,
)
from tests.support.browser import WEB_DIST
from tests.support.bus import connected_bus
from tests.support.chat import backend_env, chat_services
from tests.support.host_events import following
from tests.support.host_worker import HostWorker
from tests.support.media import MediaServer
from tests.support.paid_doubles import paid_worker

pytestmark = pytest.mark.browser

OPERATOR_SECRET = "console-operator-secret-0123456789"
LINE = "Welcome back, everyone"
"""What the operator has the host say (the Realtime double says a `say` verbatim)."""
TITLE_REGION_JS = """(img) => {
    // Where the visual's title is drawn (northern_lights_png: the top left of the picture),
    // in page pixels, from the image as object-fit shows it in its element.
    const r = img.getBoundingClientRect();
    const fit = getComputedStyle(img).objectFit;
    const scale = (fit === "cover" ? Math.max : Math.min)(
        r.width / img.naturalWidth, r.height / img.naturalHeight);
    const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
    const x = r.x + (r.width - w) / 2, y = r.y + (r.height - h) / 2;
    const left = Math.max(x, r.x), top = Math.max(y, r.y);
    return {x: left, y: top,
            width: Math.min(x + 0.65 * w, r.x + r.width) - left,
            height: Math.min(y + 0.2 * h, r.y + r.height) - top};
}"""


@pytest.fixture(scope="module")
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


async def sign_in(page: Page, secret: str) -> None:
    await page.fill("#operator-secret", secret)
    await page.click("#sign-in-button")


async def signed_in_console(context: BrowserContext, edge: Edge) -> Page:
    """The console, signed in with the right secret, its live feed connected."""
    console = await context.new_page()
    await console.goto(edge.base_url + "/operator")
    await sign_in(console, OPERATOR_SECRET)
    await expect(console.locator("#console")).to_be_visible(timeout=10_000)
    await expect(console.locator("#feed-state")).to_have_attribute(
        "data-state", "connected", timeout=10_000
    )
    return console


async def secret_anywhere(page: Page) -> bool:
    """Whether the secret is in the page's storage, cookies visible to script, or markup."""
    found = await page.evaluate(
        """(secret) => [
            JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage}),
            document.cookie, document.documentElement.outerHTML,
        ].some((text) => text.includes(secret))""",
        OPERATOR_SECRET,
    )
    return bool(found)


async def test_the_console_signs_in_removes_a_line_bans_its_author_and_signs_out(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    chat_path: dict[str, Any],
) -> None:
    assert (WEB_DIST / "operator.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    viewer_context, operator_context = await browser.new_context(), await browser.new_context()
    try:
        console = await operator_context.new_page()
        await console.goto(edge.base_url + "/operator")
        await expect(console.locator("#sign-in-form")).to_be_visible(timeout=10_000)

        await sign_in(console, "not-the-secret")
        await expect(console.locator("#sign-in-error")).to_have_text(
            "Wrong operator secret", timeout=10_000
        )
        await expect(console.locator("#operator-secret")).to_have_value("")
        await expect(console.locator("#console")).to_be_hidden()

        await sign_in(console, OPERATOR_SECRET)
        await expect(console.locator("#console")).to_be_visible(timeout=10_000)
        await expect(console.locator("#feed-state")).to_have_attribute(
            "data-state", "connected", timeout=10_000
        )
        await expect(console.locator("#room-name")).to_have_text(f"Room {edge.room}")
        assert not await secret_anywhere(console)
        # the preview is /stage in a frame of this origin (its policy allows exactly that)
        stage = console.frame_locator("#preview").locator("#stage")
        await expect(stage).to_be_attached(timeout=10_000)

        token_answers: list[Response] = []
        viewer_context.on(
            "response",
            lambda r: token_answers.append(r) if r.url.endswith("/api/livekit-token") else None,
        )
        viewer = await join(viewer_context, edge.base_url, "Ada", [])
        await say(viewer, "hello from the audience")
        await expect(shown(viewer, "hello from the audience")).to_have_count(1, timeout=15_000)
        line = console.locator(".op-chat-entry").filter(has_text="hello from the audience")
        await expect(line).to_have_attribute("data-outcome", "approved", timeout=15_000)
        await expect(line.locator(".op-badge")).to_have_count(0)  # page chat: no platform

        # remove: gone from the viewer's page
        await line.locator(".op-remove").click()
        await expect(console.locator("#chat-result")).to_have_attribute("data-kind", "ok")
        await expect(shown(viewer, "hello from the audience")).to_have_count(0, timeout=10_000)
        await expect(line).to_have_attribute("data-outcome", "removed", timeout=10_000)

        # ban the visitor (for the selected hour): their next message is refused
        await say(viewer, "one more from Ada")
        await expect(shown(viewer, "one more from Ada")).to_have_count(1, timeout=15_000)
        second = console.locator(".op-chat-entry").filter(has_text="one more from Ada")
        await expect(second).to_have_attribute("data-outcome", "approved", timeout=15_000)
        await second.locator(".op-ban-visitor").click()
        await expect(console.locator("#chat-result")).to_have_attribute("data-kind", "ok")
        await expect(console.locator("#chat-result")).to_have_text("Banned Ada for 1 h")
        # the ban takes the visitor out of the room, and a new join is refused
        await expect(viewer.locator("#profile-error")).to_contain_text(
            "removed from the room", timeout=10_000
        )
        await expect(viewer.locator("#chat-input")).to_be_hidden()
        await viewer.click("#join-button")
        await expect(viewer.locator("#profile-error")).to_contain_text(
            "banned from this room until", timeout=10_000
        )
        await expect(viewer.locator("#profile-error")).to_contain_text("new tokens refused")
        # and their next message, sent with the token they had, is refused
        token = (await next(r for r in token_answers if r.ok).json())["token"]
        refused = await viewer.request.post(
            edge.base_url + "/api/chat",
            data={"body": "am I still here?"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status == 403, await refused.text()
        assert "chat refused" in await refused.text()
        await expect(console.locator(".op-chat-entry", has_text="am I still here?")).to_have_count(
            0
        )

        await console.click("#sign-out")
        await expect(console.locator("#sign-in-form")).to_be_visible(timeout=10_000)
        session = await console.request.get(edge.base_url + "/api/operator/session")
        assert session.status == 401
        # a reload stays signed out
        await console.reload()
        await expect(console.locator("#sign-in-form")).to_be_visible(timeout=10_000)
        await expect(console.locator("#console")).to_be_hidden()
    finally:
        await viewer_context.close()
        await operator_context.close()


@pytest.fixture
async def paid_host(  # type: ignore[no-untyped-def]
    livekit_server, nats_server, redis_server
) -> AsyncIterator[tuple[HostWorker, OpenAIRealtimeDouble, AnamDouble]]:
    """A host worker on voice `openai-realtime` and avatar `anam`, both on their doubles."""
    async with paid_worker(livekit_server, nats_server, redis_server.url) as made:
        yield made


async def click_show(console: Page, button: str) -> None:
    """`#show-end` or `#show-start`, then yes in the inline confirmation."""
    await console.click(button)
    await expect(console.locator("#show-confirm")).to_be_visible()
    await console.click("#show-confirm-yes")


async def test_the_console_says_a_line_switches_the_layout_ends_and_starts_the_show(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    chat_path: dict[str, Any],
    paid_host: tuple[HostWorker, OpenAIRealtimeDouble, AnamDouble],
    media: MediaServer,  # noqa: F811
    nats_server: Any,
) -> None:
    worker, realtime, anam = paid_host
    edge = await make_edge(
        web_dist=WEB_DIST,
        operator_secret=OPERATOR_SECRET,
        stage_media_url=media.url,
        agent_name=worker.agent_name,
    )
    await edge.wait_for_bus()
    room = edge.room
    viewer_context = await browser.new_context(viewport={"width": 1366, "height": 900})
    operator_context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    dialogs: list[str] = []
    try:
        async with (
            connected_bus(nats_server, "operator-console-e2e") as bus,
            following(bus, room) as events,
        ):
            # the viewer's token dispatches the host: the Realtime voice and the Anam avatar
            viewer = await join(viewer_context, edge.base_url, "Ada", dialogs)
            live = await events.changed.until(lambda: events.job("live"), 40, "the host live")
            assert (live.voice, live.avatar) == ("openai-realtime", "anam")
            first_avatar = await anam.wait_for_avatar("publishing", within=20)
            assert first_avatar.room == room
            await expect(viewer.locator("#stage")).to_have_attribute(
                "data-host", ANAM_AVATAR_IDENTITY, timeout=20_000
            )
            console = await signed_in_console(operator_context, edge)
            await expect(console.locator("#host-backends")).to_have_text(
                "voice openai-realtime · avatar anam", timeout=10_000
            )

            # say: the host speaks it, and the viewer's captions show it
            await console.fill("#say-text", LINE)
            await console.click("#say-button")
            await expect(console.locator("#say-result")).to_have_text("Sent to the host")
            said = await events.changed.until(lambda: events.turn("say"), 20, "the said turn")
            assert said.text == LINE
            await expect(viewer.locator("#host-captions")).to_contain_text(LINE, timeout=20_000)

            # a visual on the stage (the host relays it from stage.visual), then the layout
            visual = northern_lights_visual(room)
            await bus.publish(subjects.stage_visual(room), visual)
            preview = console.frame_locator("#preview")
            for page_stage in (viewer.locator("#stage"), preview.locator("#stage")):
                await expect(page_stage.locator("#stage-visual")).to_have_attribute(
                    "data-visual-id", visual.id, timeout=20_000
                )
            choice = console.locator("#layout-choices input[value='center']")
            await choice.check()
            await expect(console.locator("#layout-result")).to_have_text("Layout: center")
            await expect(viewer.locator("#stage")).to_have_attribute(
                "data-layout", "center", timeout=5_000
            )
            # the Anam double's avatar stands on chroma green: keyed, over the whole stage in
            # `center` (today's look), where it covers the title
            await expect(viewer.locator("#stage")).to_have_attribute(
                "data-host-look", "keyed", timeout=10_000
            )
            host_box = await box(viewer.locator("#stage-canvas"))
            assert overlap(await title_region(viewer.locator("#stage-visual")), host_box) > 0

            await console.locator("#layout-choices input[value='corner']").check()
            await expect(console.locator("#layout-result")).to_have_text("Layout: corner")
            await expect(choice).not_to_be_checked()
            for page_stage in (viewer.locator("#stage"), preview.locator("#stage")):
                await expect(page_stage).to_have_attribute("data-layout", "corner", timeout=5_000)
            # on both pages the host's box leaves the visual, and so its title, alone
            for name, stage in (("viewer", viewer), ("/stage", preview)):
                await expect(stage.locator("#stage")).to_have_attribute(
                    "data-host", ANAM_AVATAR_IDENTITY
                )
                host_box = await box(stage.locator("#stage-canvas"))
                visual_box = await box(stage.locator("#stage-visual img.visible"))
                assert overlap(visual_box, host_box) == 0, (name, visual_box, host_box)
                region = await title_region(stage.locator("#stage-visual"))
                assert overlap(region, host_box) == 0, (name, region, host_box)

            # end the show: the viewer sees it, the job ends, every paid session closes
            await click_show(console, "#show-end")
            await expect(console.locator("#show-result")).to_have_text("Show ended")
            for page_stage in (viewer.locator("#stage"), preview.locator("#stage")):
                await expect(page_stage).to_have_attribute("data-show", "ended", timeout=10_000)
            await expect(viewer.locator("#show-ended")).to_be_visible()
            await expect(viewer.locator("#show-ended")).to_have_text("The show has ended")
            ended = await events.changed.until(lambda: events.job("ended"), 20, "the job's end")
            assert (ended.job_id, ended.reason) == (live.job_id, "operator")
            await anam.wait_until(lambda: first_avatar.state == "closed", 15)
            await realtime.wait_until(lambda: realtime.connections == 0, 15)
            await expect(console.locator("#show-state")).to_have_text("ended", timeout=10_000)
            await expect(console.locator("#host-state-line")).to_have_attribute(
                "data-state", "ended", timeout=10_000
            )
            await expect(viewer.locator("#stage")).not_to_have_attribute(
                "data-host", ANAM_AVATAR_IDENTITY, timeout=10_000
            )

            # start it again: a host comes back to the viewer who stayed
            await click_show(console, "#show-start")
            await expect(console.locator("#show-result")).to_have_text("Show started")
            await expect(viewer.locator("#show-ended")).to_be_hidden(timeout=10_000)
            back = await events.changed.until(
                lambda: events.job("live", not_id=live.job_id), 40, "a new host live"
            )
            assert (back.voice, back.avatar) == ("openai-realtime", "anam")
            second_avatar = await anam.wait_for_avatar("publishing", within=20)
            assert second_avatar is not first_avatar and second_avatar.room == room
            await expect(viewer.locator("#stage")).to_have_attribute(
                "data-host", ANAM_AVATAR_IDENTITY, timeout=20_000
            )
            await expect(console.locator("#show-state")).to_have_text("live")
            assert dialogs == []
    finally:
        await viewer_context.close()
        await operator_context.close()


async def title_region(visual: Locator) -> FloatRect:
    """Where the shown visual's title is, in page pixels."""
    region: FloatRect = await visual.locator("img.visible").evaluate(TITLE_REGION_JS)
    assert region["width"] > 0 and region["height"] > 0, region
    return region


async def test_the_console_lists_every_show_beside_its_chat_and_stage(  # type: ignore[no-untyped-def]
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    chat_path: dict[str, Any],
    tmp_path,
) -> None:
    """The console of a deployment with three shows, a viewer chatting: the Shows panel lists
    every show with its state, the default one picked, beside chat and the stage controls.
    With `LIVESTAGE_DOCS_IMAGES=docs/images` it also writes README's `operator-console.png`
    (how that picture is made)."""
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    shows = {f"quiz-{uuid.uuid4().hex[:6]}": "Quiz night", f"news-{uuid.uuid4().hex[:6]}": "News"}
    for room, title in shows.items():
        config = ShowConfig(room=room, title=title, created_at=now_ms(), updated_at=now_ms())
        await edge.services.shows.create(config)
    ended = next(iter(shows))
    await edge.services.shows.end(ended, reason="operator")
    viewer_context = await browser.new_context()
    operator_context = await browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        console = await signed_in_console(operator_context, edge)
        # the session's Redis also holds other tests' shows: these three are what it is owed
        items = console.locator(".op-show-item")
        await expect(items.first).to_have_attribute("data-room", edge.room, timeout=10_000)
        await expect(items.first.locator("button")).to_have_attribute("aria-pressed", "true")
        for room, title in shows.items():
            await expect(console.locator(f'.op-show-item[data-room="{room}"]')).to_contain_text(
                title
            )
        await expect(console.locator(f'.op-show-item[data-room="{ended}"]')).to_have_attribute(
            "data-state", "ended"
        )

        viewer = await join(viewer_context, edge.base_url, "Ada", [])
        for text in ("What are the northern lights made of?", "hello from Lisbon!"):
            await say(viewer, text)
            line = console.locator(".op-chat-entry").filter(has_text=text)
            await expect(line).to_have_attribute("data-outcome", "approved", timeout=15_000)
        first = console.locator(".op-chat-entry").filter(has_text="northern lights")
        await first.locator(".op-remove").click()
        await expect(first).to_have_attribute("data-outcome", "removed", timeout=10_000)

        folder = os.environ.get("LIVESTAGE_DOCS_IMAGES")
        target = Path(folder) if folder else tmp_path
        path = target / "operator-console.png"
        await console.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
    finally:
        await viewer_context.close()
        await operator_context.close()
