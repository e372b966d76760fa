"""YouTube and Twitch chat on the viewer page (Debian's Chromium through Playwright), through the
real chat path after chat-bridge: lines published on `chat.submitted.<room>` with a `source`
are moderated, stored and sent by the real moderation and chat-history processes, and shown with
the platform's badge; a profane one and a banned user's never; a reload (the page's catch-up
from history) keeps the badges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nats.aio.msg import Msg
from playwright.async_api import Browser, Page, expect

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, ModerationVerdict, now_ms
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.e2e.test_chat_browser import join, shown
from tests.support.browser import WEB_DIST
from tests.support.bus import connected_bus
from tests.support.chat import backend_env, chat_services, platform_message
from tests.support.waiting import until

pytestmark = pytest.mark.browser

OPERATOR_SECRET = "platform-operator-secret-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_SECRET}"}


@pytest.fixture
def chat_path(nats_server, redis_server, livekit_server) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with chat_services(backend_env(nats_server, redis_server, livekit_server)) as processes:
        yield processes


async def rejections(bus: Bus, room: str) -> dict[str, ModerationVerdict]:
    """Rejections of `room` from now on, by message id (filled as they are published)."""
    seen: dict[str, ModerationVerdict] = {}

    async def on_rejected(msg: Msg) -> None:
        verdict = ModerationVerdict.from_json(msg.data)
        seen[verdict.message_id] = verdict

    await bus.nc.subscribe(subjects.chat_rejected(room), cb=on_rejected)
    return seen


async def submit(bus: Bus, message: ChatMessage) -> None:
    await bus.publish(subjects.chat_submitted(message.room), message)


async def expect_platform_lines(page: Page, marta: ChatMessage, super_chat: ChatMessage) -> None:
    twitch_line = shown(page, marta.body)
    await expect(twitch_line).to_have_count(1, timeout=15_000)
    await expect(twitch_line).to_have_attribute("data-platform", "twitch")
    await expect(twitch_line.locator(".chat-author")).to_have_text("Marta")
    await expect(twitch_line.locator(".chat-platform")).to_have_text("Twitch")
    await expect(twitch_line.locator(".chat-role")).to_have_text(["mod"])
    await expect(twitch_line.locator(".chat-avatar svg.platform-twitch")).to_have_count(1)

    paid = shown(page, super_chat.body)
    await expect(paid).to_have_count(1, timeout=15_000)
    await expect(paid).to_have_class("chat-message chat-viewer chat-event")
    await expect(paid.locator(".chat-platform")).to_have_text("YouTube")
    await expect(paid.locator(".chat-event-label")).to_have_text("Super Chat · $5.00")
    await expect(paid.locator(".chat-avatar svg.platform-youtube")).to_have_count(1)


async def test_platform_chat_is_badged_moderated_bannable_and_kept_across_a_reload(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    chat_path: dict[str, Any],
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    room = edge.room
    dialogs: list[str] = []
    context = await browser.new_context()
    async with connected_bus(nats_server, "platform-browser-test") as bus:
        rejected = await rejections(bus, room)
        try:
            page = await join(context, edge.base_url, "Ada", dialogs)
            at = now_ms()

            marta = platform_message(
                room,
                "hello from Twitch chat!",
                user_id="42",
                author_name="Marta",
                roles=("moderator", "subscriber"),
                created_at=at - 2,
            )
            super_chat = platform_message(
                room,
                "love the show <b>so much</b>",
                platform="youtube",
                user_id="UClu_1",
                author_name="Lu",
                event="super_chat",
                amount="$5.00",
                created_at=at - 1,
            )
            profane = platform_message(room, "f u c k you all", user_id="43", author_name="Rude")
            for message in (marta, super_chat, profane):
                await submit(bus, message)
            await expect_platform_lines(page, marta, super_chat)
            assert await page.locator("#chat-list b, #chat-list img").count() == 0

            # the profane line is rejected by moderation and never reaches the page
            await until(lambda: profane.id in rejected, 15, "the profane line's rejection")
            assert "blocklist" in rejected[profane.id].checks
            await expect(page.locator(f'.chat-message[data-id="{profane.id}"]')).to_have_count(0)

            # the operator bans Marta by her Twitch identity: her next line is rejected
            banned = await edge.client.post(
                "/api/operator/bans", json={"identity": "twitch:42"}, headers=OPERATOR
            )
            assert banned.status_code == 201, banned.text
            again = platform_message(room, "am I still here?", user_id="42", author_name="Marta")
            await submit(bus, again)
            await until(lambda: again.id in rejected, 15, "the banned user's rejection")
            assert rejected[again.id].checks == ["banned"]
            await expect(page.locator(f'.chat-message[data-id="{again.id}"]')).to_have_count(0)

            # a reload catches up from history: the same lines, badges and labels
            await page.reload()
            await page.click("#join-button")
            await expect(page.locator("#connection-state")).to_have_attribute(
                "data-state", "connected", timeout=30_000
            )
            await expect_platform_lines(page, marta, super_chat)
            await expect(page.locator(".chat-message .chat-body")).to_have_text(
                [marta.body, super_chat.body]
            )
            assert dialogs == []
        finally:
            await context.close()
