"""Chat between two real browsers (Debian's Chromium through Playwright, two contexts = two
visitors) on the built viewer page, through the whole real chat path: edge, moderation,
chat-history, LiveKit. A reload shows history, markup stays text, an operator's removal
disappears from both pages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.support.browser import WEB_DIST
from tests.support.chat import backend_env, chat_services

pytestmark = pytest.mark.browser

OPERATOR_SECRET = "browser-operator-secret-0123456789"
XSS_NAME = '<img src=x onerror="alert(1)">'
XSS_BODY = "<script>alert(2)</script> <b>bold?</b> <img src=y onerror=alert(3)>"


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


async def join(context: BrowserContext, base_url: str, name: str, dialogs: list[str]) -> Page:
    page = await context.new_page()
    page.on(
        "dialog",
        lambda dialog: (dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())),
    )
    await page.goto(base_url + "/")
    await page.fill("#display-name", name)
    await page.click("#join-button")
    await expect(page.locator("#connection-state")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    return page


async def say(page: Page, body: str) -> None:
    await page.fill("#chat-input", body)
    await page.click("#chat-send")


def shown(page: Page, body: str) -> Any:
    return page.locator(".chat-message[data-status='shown']").filter(
        has=page.locator(".chat-body", has_text=body)
    )


async def test_two_browsers_chat_reload_keeps_history_markup_is_text_removal_hides(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,  # noqa: F811
    chat_path: dict[str, Any],
) -> None:
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    dialogs: list[str] = []
    first, second = await browser.new_context(), await browser.new_context()
    try:
        ada = await join(first, edge.base_url, XSS_NAME, dialogs)
        bob = await join(second, edge.base_url, "Bob", dialogs)

        await say(ada, XSS_BODY)
        from_ada = shown(bob, "bold?")
        await expect(from_ada).to_have_count(1, timeout=15_000)
        await expect(from_ada.locator(".chat-author")).to_have_text(XSS_NAME)
        await expect(from_ada.locator(".chat-body")).to_have_text(XSS_BODY)
        ada_id = await from_ada.get_attribute("data-id")
        assert ada_id

        await say(bob, "hi Ada, nice name")
        await expect(shown(ada, "hi Ada, nice name")).to_have_count(1, timeout=15_000)
        await expect(shown(ada, "bold?")).to_have_count(1)  # her own echo, confirmed

        # A reload: Bob joins again and history brings back both lines, in order.
        await bob.reload()
        await bob.click("#join-button")  # the profile is remembered; joining is one click
        await expect(bob.locator("#connection-state")).to_have_attribute(
            "data-state", "connected", timeout=30_000
        )
        lines = bob.locator(".chat-message .chat-body")
        await expect(lines).to_have_text([XSS_BODY, "hi Ada, nice name"], timeout=15_000)
        await expect(bob.locator(".chat-message .chat-author").first).to_have_text(XSS_NAME)

        # Nothing in a name or a body became an element, and nothing ran.
        for page in (ada, bob):
            assert (
                await page.locator("#chat-list img, #chat-list script, #chat-list b").count() == 0
            )
            assert (
                await page.evaluate("document.querySelectorAll('img[src=x], img[src=y]').length")
                == 0
            )
        assert dialogs == []

        # The operator removes Ada's line: it disappears from both pages at once.
        removed = await edge.client.delete(
            f"/api/operator/chat/messages/{ada_id}",
            headers={"Authorization": f"Bearer {OPERATOR_SECRET}"},
        )
        assert removed.status_code == 202, removed.text
        for page in (ada, bob):
            await expect(page.locator(f'.chat-message[data-id="{ada_id}"]')).to_have_count(
                0, timeout=10_000
            )
            await expect(page.locator(".chat-message .chat-body")).to_have_text(
                ["hi Ada, nice name"]
            )
    finally:
        await first.close()
        await second.close()
