"""The viewer page in Chromium reads batch packets on the chat topic and shows their messages in
approval order (`seq`), even when the packets reach it out of that order (two chat-history
instances sending at once)."""

from __future__ import annotations

import pytest
from livekit import api
from playwright.async_api import Browser, expect

from chat_history.decisions import batch_json
from livestage.schemas import ChatMessageEvent, deflate_packet, now_ms
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.support.browser import WEB_DIST
from tests.support.chat import chat_message
from tests.support.livekit_helpers import LiveKitEndpoint, server_api

pytestmark = pytest.mark.browser


async def test_the_page_shows_batches_in_approval_order(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    livekit_server: LiveKitEndpoint,
) -> None:
    edge = await make_edge(web_dist=WEB_DIST)
    await edge.wait_for_bus()
    page = await browser.new_page()
    try:
        await page.goto(edge.base_url + "/")
        await page.fill("#display-name", "Batch Reader")
        await page.click("#join-button")
        await expect(page.locator("#connection-state")).to_have_attribute(
            "data-state", "connected", timeout=30_000
        )
        # createdAt says the opposite order (a slow moderation approves late): seq decides
        base = now_ms()
        messages = [
            chat_message(edge.room, f"line {n}", created_at=base - 1000 * n) for n in range(6)
        ]
        events = [ChatMessageEvent(message=m, seq=1000 + n) for n, m in enumerate(messages)]
        later, earlier = events[3:], events[:3]  # the later batch overtakes the earlier one
        # one plain JSON batch, one compressed as chat-history sends a busy room's: both read
        async with server_api(livekit_server) as lk:
            for batch, packed in ((later, bytes), (earlier, deflate_packet)):
                await lk.room.send_data(
                    api.SendDataRequest(
                        room=edge.room,
                        data=packed(batch_json(event.to_json() for event in batch)),
                        kind=api.DataPacket.Kind.RELIABLE,
                        topic="anam-live-chat",
                    )
                )
        shown = page.locator("#chat-list .chat-message")
        await expect(shown.filter(has_text="line ")).to_have_count(6, timeout=15_000)
        ids = await shown.evaluate_all("(items) => items.map((li) => li.dataset.id)")
        assert [i for i in ids if i in {m.id for m in messages}] == [m.id for m in messages]
    finally:
        await page.close()
