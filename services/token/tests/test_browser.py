"""The viewer page in Debian's Chromium (Playwright), served by a real edge, joined to a real
livekit-server, sending chat into real JetStream."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator

import nats
import pytest
from livekit import api
from playwright.async_api import Browser, Page, expect

from livestage import subjects
from livestage.schemas import ChatMessage, ChatMessageEvent, StageVisual, now_ms
from tests.support.browser import WEB_DIST
from tests.support.livekit_helpers import server_api
from tests.support.media import MediaServer, serving
from tests.support.services import ROOT

from .conftest import EdgeFactory

XSS_NAME = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.browser


# A 1x1 PNG, served by a local stand-in for the stage producer's signed asset URLs.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with serving(PNG, "image/png") as server:
        yield server


async def open_viewer(browser: Browser, base_url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page()
    dialogs: list[str] = []
    page.on(
        "dialog",
        lambda dialog: (dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())),
    )
    await page.goto(base_url + "/")
    return page, dialogs


async def test_join_chat_and_names_render_as_text(
    make_edge: EdgeFactory,
    browser: Browser,
    nats_server,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make bootstrap`"
    edge = await make_edge(web_dist=WEB_DIST)
    await edge.wait_for_bus()

    nc = await nats.connect(nats_server.url)
    submitted = await nc.jetstream().subscribe(
        subjects.chat_submitted(edge.room), ordered_consumer=True
    )
    try:
        page, dialogs = await open_viewer(browser, edge.base_url)
        await page.fill("#display-name", XSS_NAME)
        await page.check('input[name="avatar"][value="owl"]')
        await page.click("#join-button")
        await expect(page.locator("#connection-state")).to_have_attribute(
            "data-state", "connected", timeout=30_000
        )
        await expect(page.locator("#viewer-count")).to_have_text("1", timeout=10_000)

        await page.fill("#chat-input", "hello from the browser")
        await page.click("#chat-send")
        msg = await submitted.next_msg(timeout=15)
        message = ChatMessage.from_json(msg.data)
        assert message.body == "hello from the browser"
        assert message.author_name == XSS_NAME
        assert message.avatar == "owl"
        # the author is the visitor in the page's HttpOnly cookie, which the page cannot read
        (cookie,) = [c for c in await page.context.cookies() if c["name"] == "livestage_visitor"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/api"
        assert "livestage_visitor" not in await page.evaluate("document.cookie")
        tag = edge.services.visitors.tag(cookie["value"].split(".")[1])
        assert re.fullmatch(rf"viewer_{tag}_[0-9a-f]{{8}}", message.author_identity)
        async with server_api(livekit_server) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=edge.room))
        (me,) = [p for p in listed.participants if p.identity == message.author_identity]
        assert json.loads(me.metadata) == {"avatar": "owl", "role": "viewer"}

        # A message from someone else arrives over LiveKit data on the chat topic.
        other = ChatMessage(
            id="other-" + message.id[:20],
            room=edge.room,
            author_identity="viewer_someoneelse_00000000",
            author_name=XSS_NAME,
            avatar="fox",
            body="<b>bold?</b> <script>alert(2)</script>",
            kind="viewer",
            created_at=now_ms(),
        )
        async with server_api(livekit_server) as lk:
            await lk.room.send_data(
                api.SendDataRequest(
                    room=edge.room,
                    data=ChatMessageEvent(message=other).to_json(),
                    kind=api.DataPacket.Kind.RELIABLE,
                    topic="anam-live-chat",
                )
            )
        incoming = page.locator(f'.chat-message[data-id="{other.id}"]')
        await expect(incoming.locator(".chat-author")).to_have_text(XSS_NAME, timeout=10_000)
        await expect(incoming.locator(".chat-body")).to_have_text(other.body)

        # Names and bodies are text: no element was created from them, nothing ran.
        assert await page.locator("#chat-list img, #chat-list script, #chat-list b").count() == 0
        assert await page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert dialogs == []
    finally:
        await nc.close()


async def test_a_refused_name_shows_its_reason_beside_the_field_and_stays_typed(
    make_edge: EdgeFactory,
    browser: Browser,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(web_dist=WEB_DIST)
    page, dialogs = await open_viewer(browser, edge.base_url)
    await page.fill("#display-name", "Adm1n")
    await page.click("#join-button")
    reason = page.locator("#display-name-error")
    await expect(reason).to_be_visible(timeout=10_000)
    await expect(reason).to_contain_text("reserved for the host and the show's staff")
    await expect(page.locator("#display-name")).to_have_value("Adm1n")
    await expect(page.locator("#display-name")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#profile-form")).to_be_visible()  # not joined
    assert await page.locator("#connection-state").get_attribute("data-state") != "connected"
    # typing again clears it
    await page.fill("#display-name", "Ada")
    await expect(reason).to_be_hidden()
    assert dialogs == []


class CspViolations:
    """Every Content-Security-Policy violation a page reports, as it happens."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    async def attach(self, page: Page) -> None:
        # A binding, not page.wait_for_function: the pages' CSP forbids eval, which that uses.
        await page.expose_function("__reportCsp", self._report)
        await page.add_init_script(
            'document.addEventListener("securitypolicyviolation", '
            "(e) => window.__reportCsp(e.blockedURI, e.effectiveDirective));"
        )

    def _report(self, uri: str, directive: str) -> None:
        self.seen.append((uri, directive))
        self._changed.set()

    async def wait_for(self, uri: str, directive: str, within: float = 10) -> None:
        async with asyncio.timeout(within):
            while (uri, directive) not in self.seen:
                self._changed.clear()
                await self._changed.wait()


async def test_stage_page_is_sized_by_query_has_no_controls_and_shows_visuals(
    make_edge: EdgeFactory,
    browser: Browser,
    livekit_server,  # type: ignore[no-untyped-def]
    media: MediaServer,
) -> None:
    # The page shows signed /media/ URLs of its own origin; the edge streams them from the
    # stage producer's asset server (here the stand-in at `media.url`).
    edge = await make_edge(web_dist=WEB_DIST, stage_media_url=media.url)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    csp = CspViolations()
    await csp.attach(page)
    await page.goto(edge.base_url + "/stage?width=640&height=360&captions=1")
    stage = page.locator("#stage")
    await expect(stage).to_have_attribute("data-state", "connected", timeout=30_000)
    box = await stage.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (640, 360)
    assert await page.locator("input, button:visible, form, textarea").count() == 0

    # The stage page joined with a subscribe-only "stage" token.
    async with server_api(livekit_server) as lk:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=edge.room))
    (me,) = listed.participants
    assert json.loads(me.metadata) == {"avatar": "fox", "role": "stage"}
    assert not me.permission.can_publish and not me.permission.can_publish_data

    async def show_backdrop(visual_id: str, url: str, title: str, topic: str = "") -> StageVisual:
        """Send the page a backdrop of the edge's room, live for a minute, as the producer would."""
        visual = StageVisual(
            id=visual_id,
            room=edge.room,
            kind="backdrop",
            url=url,
            title=title,
            topic=topic,
            created_at=now_ms(),
            expires_at=now_ms() + 60_000,
        )
        async with server_api(livekit_server) as lk:
            await lk.room.send_data(
                api.SendDataRequest(
                    room=edge.room,
                    data=visual.to_json(),
                    kind=api.DataPacket.Kind.RELIABLE,
                    topic="anam-stage-visual",
                )
            )
        return visual

    # Another origin's image is refused by the page before any request (and the CSP would
    # refuse it too)...
    signed = "?exp=4000000000&sig=" + "f" * 64
    await show_backdrop("visual-foreign", f"{media.url}/media/{'b' * 64}.png{signed}", "elsewhere")
    # ...a signed /media/ visual of the edge's own origin is shown.
    visual = await show_backdrop(
        "visual-1", f"/media/{'a' * 64}.png{signed}", "<i>Tonight's topic</i>", topic="t"
    )
    await expect(page.locator("#stage-visual")).to_have_attribute(
        "data-visual-id", "visual-1", timeout=10_000
    )
    await expect(page.locator("#stage-caption")).to_have_text(visual.title)
    assert await page.locator("#stage-caption i").count() == 0
    assert await page.locator('.stage-visual-item[data-id="visual-foreign"]').count() == 0
    image_ok = await page.evaluate(
        "[...document.querySelectorAll('#stage-visual img')]"
        ".some((img) => img.complete && img.naturalWidth === 1)"
    )
    assert image_ok
    assert csp.seen == []
    # the stand-in saw only the edge's request for the page's own visual, never the foreign one
    # (the edge also checks the asset server's /healthz for /statusz)
    assert [p for p in media.paths if p.startswith("/media/")] == [f"/media/{'a' * 64}.png{signed}"]


async def test_api_docs_render_from_the_edge_itself(
    make_edge: EdgeFactory,
    browser: Browser,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge()
    page = await browser.new_page()
    csp = CspViolations()
    await csp.attach(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    response = await page.goto(edge.base_url + "/docs")
    assert response is not None and response.status == 200
    operations = page.locator(".opblock-summary-path")
    await expect(operations.first).to_be_visible(timeout=20_000)
    paths = set(await operations.all_inner_texts())
    spec = (await edge.client.get("/openapi.json")).json()
    assert {path.replace("\u200b", "") for path in paths} == set(spec["paths"])
    assert csp.seen == []
    assert not [e for e in console_errors if "Content Security Policy" in e]
    # everything came from the edge: no CDN, nothing else
    assert requested and all(url.startswith(edge.base_url) for url in requested), requested


def test_built_bundle_holds_no_secret_or_server_key_name() -> None:
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make bootstrap`"
    forbidden = [
        "LIVEKIT_API_SECRET",
        "LIVEKIT_API_KEY",
        "OPENAI_API_KEY",
        "ANAM_API_KEY",
        "GEMINI_API_KEY",
        "api_secret",
        "apiSecret",
        "devkey",
    ]
    for path in WEB_DIST.rglob("*"):
        if path.is_file() and path.suffix in {".js", ".html", ".css", ".map", ".json"}:
            text = path.read_text(errors="replace")
            found = [word for word in forbidden if word in text]
            assert not found, f"{path.relative_to(ROOT)} contains {found}"
    assert json.dumps(sorted(p.name for p in WEB_DIST.iterdir()))  # the folder is readable


async def test_a_show_page_joins_its_show_and_chats_there(
    make_edge: EdgeFactory,
    browser: Browser,
    nats_server,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    """`/s/<show>`: the page reads its show from the path, shows its title, joins its room,
    and its chat lands on that room's subject."""
    secret = "operator-secret-for-browser-shows-0123"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=secret)
    await edge.wait_for_bus()
    room = "show-" + edge.room
    created = await edge.client.post(
        "/api/operator/shows",
        json={"room": room, "title": "Quiz <b>night</b>"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert created.status_code == 201, created.text

    nc = await nats.connect(nats_server.url)
    submitted = await nc.jetstream().subscribe(subjects.chat_submitted(room), ordered_consumer=True)
    try:
        page = await browser.new_page()
        await page.goto(f"{edge.base_url}/s/{room}")
        await expect(page.locator("#show-title")).to_have_text("Quiz <b>night</b>")
        assert await page.title() == "Quiz <b>night</b>"
        await page.fill("#display-name", "Ada")
        await page.click("#join-button")
        await expect(page.locator("#connection-state")).to_have_attribute(
            "data-state", "connected", timeout=30_000
        )
        async with server_api(livekit_server) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        assert any(p.identity.startswith("viewer_") for p in listed.participants)

        await page.fill("#chat-input", "hello quiz")
        await page.click("#chat-send")
        msg = await submitted.next_msg(timeout=15)
        message = ChatMessage.from_json(msg.data)
        assert (message.room, message.body) == (room, "hello quiz")
    finally:
        await nc.close()
