"""Every capture failure is a `CaptureError`, so the loop falls back to a backdrop (and backs
off): here a Chromium that cannot start (Playwright's own error underneath) and a page's odd
scroll height (Infinity, NaN, not a number)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from livestage.egress import EgressPolicy
from stage_producer.assets import AssetSigner, AssetStore
from stage_producer.backdrops.procedural import ProceduralBackdrops
from stage_producer.capture.browser import (
    CaptureBrowser,
    CaptureError,
    CaptureOptions,
    page_height,
)
from stage_producer.egress.proxy import EgressProxy
from stage_producer.planner import PlanSettings, RoomPlan
from stage_producer.producer import VisualFactory
from stage_producer.search.base import Source
from stage_producer.topics.base import TopicChoice

from .conftest import FixedSearch


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, 0),
        (-math.inf, 0),
        (math.nan, 0),
        ("1e400", 0),
        (None, 0),
        (True, 0),
        (-5, 0),
        (2400, 2400),
        (2400.7, 2400),
        (1e300, 1 << 31),
    ],
)
def test_a_pages_scroll_height_is_read_defensively(value: object, expected: int) -> None:
    assert page_height(value) == expected


async def test_a_browser_that_fails_unexpectedly_falls_back_to_a_backdrop(
    test_site: str, tmp_path: Path
) -> None:
    """/bin/false as Chromium: Playwright raises its own error, never a CaptureError by itself."""
    proxy = await EgressProxy(EgressPolicy(allow_test_loopback=True)).start()
    browser = CaptureBrowser(CaptureOptions(chromium_path=Path("/bin/false")), proxy)
    factory = VisualFactory(
        browser=browser,
        backdrops=ProceduralBackdrops(),
        search=FixedSearch([Source(f"{test_site}/index.html", "Tea page")]),
        store=AssetStore(tmp_path, max_total_bytes=1 << 30, max_asset_bytes=1 << 24),
        signer=AssetSigner(b"test-asset-key-0123456789abcdef"),
        ttl_s=900,
    )
    try:
        with pytest.raises(CaptureError, match="failed: "):
            await browser.screenshot(f"{test_site}/index.html")
        plan = RoomPlan(PlanSettings())
        choice = TopicChoice("Tea", "tea", 1.0)
        assert plan.kind_for(Source(f"{test_site}/index.html")) != "backdrop"
        visual = await factory.for_topic("room-a", choice, plan)
        assert visual.kind == "backdrop"
        assert visual.title == "Tea page"
    finally:
        await browser.close()
        await proxy.close()


def factory_for(browser: CaptureBrowser, url: str, tmp_path: Path) -> VisualFactory:
    return VisualFactory(
        browser=browser,
        backdrops=ProceduralBackdrops(),
        search=FixedSearch([Source(url, "A page")]),
        store=AssetStore(tmp_path, max_total_bytes=1 << 30, max_asset_bytes=1 << 24),
        signer=AssetSigner(b"test-asset-key-0123456789abcdef"),
        ttl_s=900,
    )


@pytest.mark.browser
async def test_a_page_whose_reading_throws_falls_back_to_a_backdrop(
    capture_browser: CaptureBrowser, test_site: str, tmp_path: Path
) -> None:
    url = f"{test_site}/no-root.html"
    with pytest.raises(CaptureError, match="reading the page failed"):
        await capture_browser.screenshot(url)
    visual = await factory_for(capture_browser, url, tmp_path).for_topic(
        "room-a", TopicChoice("Tea", "tea", 1.0), RoomPlan(PlanSettings())
    )
    assert visual.kind == "backdrop" and visual.title == "A page"


@pytest.mark.browser
async def test_an_infinite_scroll_height_of_the_pages_own_making_changes_nothing(
    capture_browser: CaptureBrowser, test_site: str, tmp_path: Path
) -> None:
    """The page's scripts say Infinity and throw; the height is read from the DOM in a world of
    our own, so the clip is made (and were anything odd read, it would be a CaptureError)."""
    url = f"{test_site}/infinite.html"
    visual = await factory_for(capture_browser, url, tmp_path).capture("room-a", url, "clip")
    assert visual.kind == "clip" and visual.title == "Endless"
