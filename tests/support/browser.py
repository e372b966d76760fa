"""Debian's Chromium through Playwright, for the browser tests (never `playwright install`).

The root `conftest.py` turns `launched_chromium()` into the `browser` fixture every suite shares:

    async def test_page(browser: Browser) -> None:
        page = await browser.new_page()

The built pages are in `WEB_DIST` (`make web`, or `cd web && npm run build`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from tests.support.services import ROOT

WEB_DIST = ROOT / "web" / "dist"
"""The built viewer and stage pages an edge serves in the browser tests."""

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)


def chromium_path() -> str:
    """Debian's Chromium binary; a clear error saying how to get it when it is missing."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(
        "Debian chromium is missing: run `make bootstrap` (apt-get install chromium)"
    )


@contextlib.asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed on exit."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            await launched.close()
