"""Every benchmark in `bench/` still runs: its smoke mode (`BENCH_SMOKE=1`), as `make bench` would.

One test per `bench/bench_<name>.py` (found the way `python -m bench` finds them, so a new
benchmark is covered without touching this file). Each runs `python -m bench <name>` in a
process of its own (benches pin CPUs and start servers and children) with its JSON written to a
temporary directory, and checks that it finished and reported every figure its `FIGURES` names
as a number. Never how fast: a slow machine fails no test here, only a bench that breaks, hangs
past `TIMEOUT_S` or stops reporting a figure.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import missing_figures
from bench.__main__ import available

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 170.0
"""Per benchmark, under pytest's own 180 s so that a hung bench is killed with its output shown.
Most of a smoke run is starting processes (servers, workers, Chromium) and importing livekit and
the host agent: 10 to 160 s each on the shared 2-core machine at a load average of 11 to 16."""


def test_every_benchmark_is_found() -> None:
    assert {"chat_latency", "chat_scale", "moderation", "reaction"} <= set(available())


@pytest.mark.parametrize("name", available())
def test_the_benchmark_completes_in_smoke_mode_and_reports_its_figures(
    name: str, tmp_path: Path
) -> None:
    figures = getattr(importlib.import_module(f"bench.bench_{name}"), "FIGURES", ())
    assert figures, f"bench/bench_{name}.py: declare FIGURES, the figures its JSON reports"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", name],
        cwd=ROOT,
        env={**os.environ, "BENCH_SMOKE": "1", "BENCH_RESULTS": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a hung bench goes with its children
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{name} smoke run still running after {TIMEOUT_S} s:\n{output[-4000:]}")
    assert process.returncode == 0, f"{name} smoke run failed:\n{output[-4000:]}"
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["benchmark"] == name
    assert result["smoke"] is True
    assert missing_figures(result, figures) == [], json.dumps(result, indent=1)[:4000]
