"""Capture time with a warm browser, and whether capturing slows the host down.

1. Capture: Debian's Chromium through the egress proxy, a shipped page
   (`http://pages.livestage.invalid/...`, served by the proxy itself: a local page, no network),
   after two warm-up captures. p50/p90 of screenshots (goal: p50 <= 1.5 s), p50 of clips (8 s,
   WebM) and of drawn backdrops.
2. Host reaction latency (`bench_reaction`, the host agent's local backends) without and then
   with the stage producer's capture work running in a process of its own
   (`bench.capture_load`, one capture at a time as in production). Goal: within 10%.

    python -m bench capture        # BENCH_CAPTURES=15, BENCH_ROUNDS=12, BENCH_HOST_AVATAR=local

`BENCH_SMOKE=1`: no warm-up, one screenshot, one 1 s clip, one backdrop, and one reaction round
each way with avatar `none`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import smoke_or
from livestage.egress import EgressPolicy
from stage_producer.app import PAGES_DIR
from stage_producer.backdrops.base import BackdropRequest
from stage_producer.backdrops.procedural import ProceduralBackdrops
from stage_producer.capture.browser import CaptureBrowser, CaptureOptions
from stage_producer.egress.proxy import EgressProxy
from stage_producer.settings import StageSettings

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["aurora", "deep-sea", "mars", "synths"]
TOPICS = ["Northern lights", "Mars", "Deep sea", "Synthesizers", "Coffee"]
WARM_UPS = smoke_or(2, 0)
CLIPS = smoke_or(3, 1)
CLIP_SECONDS = smoke_or(8.0, 1.0)
BACKDROPS = smoke_or(len(TOPICS), 1)
FIGURES = (
    "capture.browser_launch_s",
    *(
        f"capture.{kind}.{stat}"
        for kind in ("screenshot", "clip", "backdrop_procedural_1280x720")
        for stat in ("n", "p50_s", "p90_s", "min_s", "max_s")
    ),
    "capture.clip_seconds",
    "host_reaction.without_captures.reaction_ms.p50",
    "host_reaction.with_captures.reaction_ms.p50",
    "host_reaction.captures_during_run",
    "host_reaction.p50_change_percent",
)


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_s": round(float(np.percentile(values, 50)), 3),
        "p90_s": round(float(np.percentile(values, 90)), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


async def capture_times(count: int) -> dict[str, Any]:
    settings = StageSettings()
    proxy = await EgressProxy(EgressPolicy(), first_party_dir=PAGES_DIR).start()
    started = time.monotonic()
    browser = await CaptureBrowser(
        CaptureOptions(
            chromium_path=Path(settings.chromium_path),
            clip_fps=settings.clip_fps,
            clip_seconds=CLIP_SECONDS,
        ),
        proxy,
    ).start()
    launch_s = time.monotonic() - started
    urls = [f"http://pages.livestage.invalid/{page}.html" for page in PAGES]
    try:
        for url in urls[:WARM_UPS]:
            await browser.screenshot(url)
        shots = []
        for index in range(count):
            shot = await browser.screenshot(urls[index % len(urls)])
            shots.append(shot.elapsed_s)
        clips = []
        for index in range(CLIPS):
            clip = await browser.clip(urls[index % len(urls)])
            clips.append(clip.elapsed_s)
    finally:
        await browser.close()
        await proxy.close()
    drawn = ProceduralBackdrops()
    backdrops = []
    for topic in TOPICS[:BACKDROPS]:
        begun = time.monotonic()
        drawn.render(BackdropRequest(topic=topic, title=f"All about {topic}"))
        backdrops.append(time.monotonic() - begun)
    return {
        "browser_launch_s": round(launch_s, 3),
        "screenshot": stats(shots),
        "clip": stats(clips),
        "clip_seconds": CLIP_SECONDS,
        "backdrop_procedural_1280x720": stats(backdrops),
        "goal_screenshot_p50_s": 1.5,
        "met_screenshot_goal": stats(shots)["p50_s"] <= 1.5,
    }


async def reaction_with_and_without_captures(rounds: int, avatar: str) -> dict[str, Any]:
    try:
        from bench import bench_reaction
        from tests.support.infra import LiveKitServer, NatsServer
    except ImportError as error:
        return {"skipped": f"the host agent's reaction bench is not available here: {error}"}
    results: dict[str, Any] = {}
    with NatsServer() as nats, LiveKitServer() as livekit:
        results["without_captures"] = await bench_reaction._measure(nats, livekit, rounds, avatar)
        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.capture_load",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        first: list[str] = []
        try:
            assert load.stdout is not None
            async with asyncio.timeout(60):  # its browser is up and has captured once
                while not first or not first[-1].endswith("s"):
                    line = await load.stdout.readline()
                    if not line:
                        raise RuntimeError(f"bench.capture_load ended: {first[-20:]}")
                    first.append(line.decode().rstrip())
            results["with_captures"] = await bench_reaction._measure(nats, livekit, rounds, avatar)
        finally:
            load.terminate()
            output, _ = await asyncio.wait_for(load.communicate(), 20)
        lines = output.decode().splitlines()  # captures after the first: during the run
        results["captures_during_run"] = sum(1 for line in lines if line.endswith("s"))
    before = _p50(results["without_captures"])
    after = _p50(results["with_captures"])
    if before and after:
        results["p50_change_percent"] = round((after - before) / before * 100, 1)
        results["goal_within_percent"] = 10
        results["met_goal"] = abs(results["p50_change_percent"]) <= 10
    return results


def _p50(result: dict[str, Any]) -> float | None:
    """The reaction p50 in ms from `bench_reaction`'s result (`reaction_ms.p50`)."""
    reaction = result.get("reaction_ms")
    if isinstance(reaction, dict) and isinstance(reaction.get("p50"), int | float):
        return float(reaction["p50"])
    samples = result.get("samples_ms")
    if isinstance(samples, list) and samples:
        return float(statistics.median(samples))
    return None


async def run() -> dict[str, Any]:
    captures = int(os.environ.get("BENCH_CAPTURES", smoke_or("15", "1")))
    rounds = int(os.environ.get("BENCH_ROUNDS", smoke_or("12", "1")))
    load = os.getloadavg()
    return {
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load]},
        "capture": await capture_times(captures),
        "host_reaction": await reaction_with_and_without_captures(
            rounds, os.environ.get("BENCH_HOST_AVATAR", smoke_or("local", "none"))
        ),
    }
