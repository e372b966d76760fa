"""Background load for `bench_capture`: the stage producer's capture work, in a process of its
own as in production, one capture at a time (screenshots with a clip every third), until killed.

    python -m bench.capture_load      # prints one line per capture
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from livestage.egress import EgressPolicy
from stage_producer.app import PAGES_DIR
from stage_producer.capture.browser import CaptureBrowser, CaptureOptions
from stage_producer.egress.proxy import EgressProxy
from stage_producer.settings import StageSettings

PAGES = ["aurora", "deep-sea", "mars", "synths"]


async def main() -> None:
    settings = StageSettings()
    os.nice(settings.nice)  # as the service does: its Chromium inherits it
    proxy = await EgressProxy(EgressPolicy(), first_party_dir=PAGES_DIR).start()
    browser = await CaptureBrowser(
        CaptureOptions(chromium_path=Path(settings.chromium_path), clip_fps=settings.clip_fps),
        proxy,
    ).start()
    count = 0
    while True:
        url = f"http://pages.livestage.invalid/{PAGES[count % len(PAGES)]}.html"
        started = time.monotonic()
        kind = "clip" if count % 3 == 2 else "screenshot"
        await (browser.clip(url) if kind == "clip" else browser.screenshot(url))
        print(f"{kind} {time.monotonic() - started:.2f}s", flush=True)
        count += 1


if __name__ == "__main__":
    asyncio.run(main())
