"""The console runs many shows (issue #20) in Debian's Chromium against the real edge, NATS, Redis
and livekit-server: the operator creates a show in the shows panel (a bad name is refused beside
its field), the console switches to it (URL, event stream, preview), the preview joins that
show's room as a `preview_` participant (no audience: no viewer counted, no host dispatched),
ends the show and deletes it, and the console is back on the default show."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from livekit import api
from playwright.async_api import Browser, expect

from livestage.identity import PREVIEW_PREFIX
from services.token.tests.conftest import EdgeFactory, make_edge  # noqa: F401 - a fixture
from tests.e2e.test_operator_console import OPERATOR_SECRET, signed_in_console
from tests.support.browser import WEB_DIST
from tests.support.livekit_helpers import server_api

pytestmark = pytest.mark.browser


async def test_a_show_is_created_picked_previewed_ended_and_deleted_in_the_console(
    make_edge: EdgeFactory,  # noqa: F811
    browser: Browser,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    assert (WEB_DIST / "operator.html").is_file(), "web/dist is not built: run `make web`"
    edge = await make_edge(web_dist=WEB_DIST, operator_secret=OPERATOR_SECRET)
    await edge.wait_for_bus()
    quiz = "quiz-" + uuid.uuid4().hex[:8]
    context = await browser.new_context()
    try:
        console = await signed_in_console(context, edge)
        default_item = console.locator(f'.op-show-item[data-room="{edge.room}"] button')
        await expect(default_item).to_have_attribute("aria-pressed", "true", timeout=10_000)
        await expect(console.locator("#show-delete")).to_be_hidden()  # the default show stays

        await console.click("#new-show summary")
        await console.fill("#new-show-room", "no spaces <b>")
        await console.fill("#new-show-title", "Quiz night")
        await console.fill("#new-show-topics", "space, cooking")
        await console.click("#new-show-create")
        room_error = console.locator("#new-show-room-error")
        await expect(room_error).to_be_visible(timeout=10_000)
        await expect(room_error).to_contain_text("match")
        await expect(console.locator("#new-show-room-error b")).to_have_count(0)

        await console.fill("#new-show-room", quiz)
        await console.click("#new-show-create")
        await expect(console.locator("#new-show-result")).to_have_text(f"Created {quiz}")
        await expect(room_error).to_be_hidden()
        # the console operates on the new show: its URL, its stream, its preview
        await expect(console).to_have_url(re.compile(rf"/operator\?show={quiz}$"))
        picked = console.locator(f'.op-show-item[data-room="{quiz}"] button')
        await expect(picked).to_have_attribute("aria-pressed", "true")
        await expect(picked).to_contain_text("Quiz night")
        await expect(console.locator("#room-name")).to_have_text(f"Room {quiz}", timeout=10_000)
        preview_src = await console.locator("#preview").get_attribute("src") or ""
        assert f"show={quiz}" in preview_src and "preview=1" in preview_src
        stage = console.frame_locator("#preview").locator("#stage")
        await expect(stage).to_have_attribute("data-state", "connected", timeout=15_000)

        async def in_room() -> list[str]:
            async with server_api(livekit_server) as lk:
                listed = await lk.room.list_participants(api.ListParticipantsRequest(room=quiz))
            return [p.identity for p in listed.participants]

        async with asyncio.timeout(15):
            # LiveKit has no event for its participant list: poll it
            while not (identities := await in_room()):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert [i.startswith(PREVIEW_PREFIX) for i in identities] == [True]
        assert await edge.services.gateway.count_viewers(quiz) == 0  # no audience
        agent = edge.services.livekit.agent_name
        async with server_api(livekit_server) as lk:  # no host asked for it
            dispatches = await lk.agent_dispatch.list_dispatch(quiz)
        assert [d for d in dispatches if d.agent_name == agent] == []

        # end it from the console: its state here and in the list
        await console.click("#show-end")
        await console.click("#show-confirm-yes")
        await expect(console.locator("#show-state")).to_have_text("ended", timeout=10_000)
        await expect(console.locator(f'.op-show-item[data-room="{quiz}"]')).to_have_attribute(
            "data-state", "ended"
        )
        assert (await edge.services.shows.get(quiz)).state == "ended"

        # delete it (asked first): the console is back on the default show
        await console.click("#show-delete")
        await expect(console.locator("#delete-confirm-text")).to_contain_text(quiz)
        await console.click("#delete-confirm-yes")
        await expect(console.locator("#shows-result")).to_have_text(f"Deleted {quiz}")
        await expect(console.locator(f'.op-show-item[data-room="{quiz}"]')).to_have_count(0)
        await expect(default_item).to_have_attribute("aria-pressed", "true")
        await expect(console).to_have_url(re.compile(r"/operator$"))
        await expect(console.locator("#room-name")).to_have_text(f"Room {edge.room}")
        assert not await edge.services.shows.exists(quiz)
    finally:
        await context.close()
