"""The built viewer page in Debian's Chromium, served by a real edge process that dispatches
this module's host worker: after Join the host's audio plays in the page, its captions appear
while it speaks, its state shows, and (avatar `none`) a poster stands in for the video."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from livestage import subjects

from .conftest import HostWorker, command, edge_process, joined_page

pytestmark = pytest.mark.browser

PAGE_AUDIO_LEVEL = """
async () => {
  const el = document.querySelector('#audio-sink audio');
  if (!el || !el.srcObject) return {found: false};
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaStreamSource(el.srcObject).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  let peak = 0;
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    peak = Math.max(peak, Math.sqrt(sum / buf.length));
  }
  await ctx.close();
  return {found: true, paused: el.paused, peak};
}
"""


HOST_STATES = re.compile(r"^(idle|thinking|speaking|paused)$")
"""Any state the host reports (not `absent`): the host's first state is its own business."""

RECORD_STATES = """
([selector, key]) => {
  const el = document.querySelector(selector);
  window.seenStates = [el.dataset[key]];
  new MutationObserver(() => {
    if (el.dataset[key] !== window.seenStates.at(-1)) window.seenStates.push(el.dataset[key]);
  }).observe(el, {attributes: true});
}
"""
"""Record every state `selector`'s `data-<key>` takes from now on in `window.seenStates`
(a state can come and go between two polls: the page keeps them all)."""

SAW_SPEAKING = "() => window.seenStates.includes('speaking')"

LEFT_SPEAKING = """
() => {
  const states = window.seenStates;
  const spoke = states.indexOf('speaking');
  return spoke >= 0 && states.slice(spoke).some((s) => s !== 'speaking' && s !== 'absent');
}
"""


@pytest.fixture
def edge_for(host_worker: HostWorker, nats_server, redis_server, livekit_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with edge_process(host_worker, nats_server, redis_server, livekit_server) as edge:
        yield edge


async def test_after_join_the_host_is_heard_captioned_and_shown(
    edge_for: str, browser: Browser, bus, viewers, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    base_url, room = edge_for.split("|")
    page = await joined_page(browser, base_url)
    await expect(page.locator("#connection-state")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    # the host agent arrives: its state badge and, with avatar `none`, the poster
    badge = page.locator("#host-state")
    await expect(badge).to_have_attribute("data-state", HOST_STATES, timeout=30_000)
    await expect(page.locator("#host-poster")).to_be_visible()
    await expect(page.locator("#host-poster-name")).to_have_text("Nova")
    await expect(page.locator("#stage-placeholder")).to_be_hidden()

    words = (
        "Hello Grace, and welcome to the show. Tonight we look at auroras, "
        "rockets and a few surprising web pages. Stay with me."
    )
    await bus.publish(subjects.host_control(room), command(room, "say", words))
    await expect(page.locator("#stage")).to_have_attribute(
        "data-host-state", "speaking", timeout=20_000
    )
    captions = page.locator("#host-captions")
    await expect(captions).to_contain_text("Grace", timeout=10_000)
    # captions follow the audio: the first words are up, the last ones not yet (~8 s to go)
    shown_early = await captions.text_content() or ""
    assert "Stay with me" not in shown_early, shown_early
    # every state the badge takes from here, while these words are being said (they may change
    # quickly once they are out: recorded in the page, read at the end)
    await page.evaluate(RECORD_STATES, ["#host-state", "state"])
    level = await page.evaluate(PAGE_AUDIO_LEVEL)
    assert level["found"] and not level["paused"], level
    assert level["peak"] > 0.01, f"the page's host audio is silent: {level}"
    await page.screenshot(path=str(tmp_path / "host-speaking.png"))  # looked at: see README
    await expect(captions).to_contain_text("Stay with me", timeout=20_000)
    # the words are out: the badge leaves `speaking`. What the host does next (idle, or its
    # next turn, e.g. greeting a viewer) is its own business, so no state is assumed here ...
    await page.wait_for_function(LEFT_SPEAKING, timeout=30_000)
    # ... but whatever it is, the badge shows the state the host reports to every participant
    # (read by a real rtc client in the same room; both settle within the bound)
    watcher = await viewers(room)
    shown = None
    try:
        async with asyncio.timeout(30):
            while True:
                shown = await badge.get_attribute("data-state")
                if shown and shown == watcher.host_state():
                    break
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(
            f"the badge shows {shown!r}, the host reports {watcher.host_state()!r}"
        ) from None
    await page.click("#leave-button")


async def test_the_stage_page_shows_captions_only_when_asked(
    edge_for: str, browser: Browser, bus
) -> None:  # type: ignore[no-untyped-def]
    base_url, room = edge_for.split("|")
    with_captions = await browser.new_page()
    await with_captions.goto(base_url + "/stage?width=960&height=540&captions=1&name=Obs")
    plain = await browser.new_page()
    await plain.goto(base_url + "/stage?width=960&height=540")
    for page in (with_captions, plain):
        await expect(page.locator("#stage")).to_have_attribute(
            "data-host-state", HOST_STATES, timeout=30_000
        )
        await expect(page.locator("#host-poster")).to_be_visible()
    # the line is short: it may be over before a poll sees `speaking`, so the pages record
    await with_captions.evaluate(RECORD_STATES, ["#host-state", "state"])
    await plain.evaluate(RECORD_STATES, ["#stage", "hostState"])
    await bus.publish(
        subjects.host_control(room), command(room, "say", "Captions for the stream, please.")
    )
    await expect(with_captions.locator("#host-captions")).to_contain_text(
        "Captions", timeout=20_000
    )
    for page in (with_captions, plain):
        await page.wait_for_function(SAW_SPEAKING, timeout=20_000)
    assert await plain.locator("#host-captions").is_hidden()
    assert await plain.locator("#host-state").is_hidden()
