"""Issue #21's "Forget me" proof in Debian's Chromium (Playwright) on the built viewer page,
through the real chat path (edge, moderation, chat-history, LiveKit): a viewer on a 390 px
phone chats, the host remembers them (their card seeded through `MemoryStore` under the tag of
their LiveKit identity, as the host agent records it), the memory dialog fits the screen and
shows the card as text; "Forget me" (with its confirm step) empties it, their lines leave the
chat on every page, and no Redis key naming the visitor remains but the erasure record."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from livestage.history import messages_key
from livestage.identity import visitor_tag_of
from livestage.memory import MemoryStore, erased_key
from livestage.schemas import ChatMessage
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.e2e.test_chat_browser import chat_path, join, say, shown  # noqa: F401 - a fixture
from tests.e2e.test_stage_layouts_browser import box, inside
from tests.support.browser import WEB_DIST

pytestmark = pytest.mark.browser

OPERATOR_SECRET = "browser-operator-secret-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_SECRET}"}
FACT = "plays the <b>cello</b>"  # markup in a card stays text


async def test_forget_me_empties_the_card_removes_the_lines_and_every_key_but_the_record(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    chat_path: dict[str, Any],  # noqa: F811
    redis_server,  # type: ignore[no-untyped-def]
) -> None:
    assert (WEB_DIST / "index.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    redis = Redis.from_url(redis_server.url)
    dialogs: list[str] = []
    phone = {"width": 390, "height": 844}
    first = await browser.new_context(viewport=phone, is_mobile=True, has_touch=True)
    second = await browser.new_context()
    tag = ""
    try:
        ada = await join(first, edge.base_url, "Ada", dialogs)
        bob = await join(second, edge.base_url, "Bob", dialogs)
        await say(ada, "I play the cello")
        await say(ada, "what is on tonight?")
        await say(bob, "hello everyone")
        for page in (ada, bob):
            for body in ("I play the cello", "what is on tonight?", "hello everyone"):
                await expect(shown(page, body)).to_have_count(1, timeout=20_000)

        history = await edge.client.get("/api/operator/chat/messages", headers=OPERATOR)
        lines = [ChatMessage.model_validate(m) for m in history.json()["messages"]]
        adas = [m for m in lines if m.author_name == "Ada"]
        assert len(adas) == 2
        tag = visitor_tag_of(adas[0].author_identity) or ""
        assert tag
        store = MemoryStore(redis, retention_days=180)
        await store.record_message(adas[0])
        await store.record_message(adas[1], question=True, topics=["tonight"])
        await store.add_facts(tag, [FACT], message_id=adas[0].id, at=adas[0].created_at)
        await store.record_show(tag, f"{edge.room}:1")

        await ada.click("#memory-button")
        card = ada.locator("#memory-card")
        await expect(ada.locator("#memory-dialog")).to_be_visible()
        await expect(card).to_contain_text(FACT, timeout=10_000)
        await expect(card).to_contain_text("what is on tonight?")
        await expect(card).to_contain_text("1 show attended")
        assert await ada.locator("#memory-card b").count() == 0
        # on Ada's phone the dialog and its buttons fit the screen
        screen = {"x": 0.0, "y": 0.0, "width": 390.0, "height": 844.0}
        for part in ("#memory-dialog", "#forget-button", "#memory-close"):
            assert inside(await box(ada.locator(part)), screen), part

        # Forget me asks first; "Keep it" keeps it
        await ada.click("#forget-button")
        await ada.click("#forget-no")
        await expect(card).to_contain_text(FACT)
        await ada.click("#forget-button")
        await ada.click("#forget-yes")
        await expect(card).to_have_attribute("data-empty", "true", timeout=15_000)
        await expect(card).to_have_text("Nothing is remembered about you.")
        assert await store.card(tag) is None

        # her lines leave both pages (chat-history deleted them first); Bob's stays
        for page in (ada, bob):
            for message in adas:
                await expect(page.locator(f'.chat-message[data-id="{message.id}"]')).to_have_count(
                    0, timeout=15_000
                )
            await expect(shown(page, "hello everyone")).to_have_count(1)
        stored = await redis.hvals(messages_key(edge.room))
        assert stored and not [raw for raw in stored if tag.encode() in raw]

        found = {k.decode() async for k in redis.scan_iter(match=f"*{tag}*", count=1000)}
        assert found == {erased_key(tag)}
        assert dialogs == []
    finally:
        await first.close()
        await second.close()
        if tag:
            await redis.delete(erased_key(tag))
        await redis.aclose()
