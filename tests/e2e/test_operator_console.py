"""The operator console (`/operator`) in Debian's Chromium against a real edge and the real chat
path (moderation, chat-history, LiveKit, JetStream): sign in (a wrong secret refused, then the
right one), the live preview frames `/stage`, a viewer's line arrives with its outcome, the
operator removes it (it vanishes from the viewer's page), says a line (the host command goes out
on the bus), and signs out. The secret is kept nowhere in the page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from playwright.async_api import Browser, Page, expect

from livestage import subjects
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.e2e.test_chat_browser import join, say, shown
from tests.support.browser import WEB_DIST
from tests.support.chat import backend_env, chat_services

pytestmark = pytest.mark.browser

OPERATOR_SECRET = "console-operator-secret-0123456789"


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


async def sign_in(page: Page, secret: str) -> None:
    await page.fill("#operator-secret", secret)
    await page.click("#sign-in-button")


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


async def test_the_console_signs_in_removes_a_line_says_a_line_and_signs_out(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,  # noqa: F811
    chat_path: dict[str, Any],
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    assert (WEB_DIST / "operator.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    nc = await nats.connect(nats_server.url)

    async def on_command(msg: nats.aio.msg.Msg) -> None:
        await commands.put(json.loads(msg.data))

    await nc.subscribe(subjects.host_control(edge.room), cb=on_command)
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

        viewer = await join(viewer_context, edge.base_url, "Ada", [])
        await say(viewer, "hello from the audience")
        await expect(shown(viewer, "hello from the audience")).to_have_count(1, timeout=15_000)
        line = console.locator(".op-chat-entry").filter(has_text="hello from the audience")
        await expect(line).to_have_attribute("data-outcome", "approved", timeout=15_000)
        await expect(line.locator(".op-badge")).to_have_count(0)  # page chat: no platform

        await line.locator(".op-remove").click()
        await expect(console.locator("#chat-result")).to_have_attribute("data-kind", "ok")
        await expect(shown(viewer, "hello from the audience")).to_have_count(0, timeout=10_000)
        await expect(line).to_have_attribute("data-outcome", "removed", timeout=10_000)

        await console.fill("#say-text", "Welcome back, everyone")
        await console.click("#say-button")
        await expect(console.locator("#say-result")).to_have_text("Sent to the host")
        await expect(console.locator("#say-text")).to_have_value("")
        command = await asyncio.wait_for(commands.get(), timeout=10)
        assert (command["action"], command["text"]) == ("say", "Welcome back, everyone")

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
        await nc.close()
