"""Run benchmarks: `python -m bench` (all) or `python -m bench moderation chat_latency`.

`BENCH_SMOKE=1` runs each in its smoke mode (see `bench/__init__.py`); `BENCH_RESULTS=<dir>`
writes the JSON files there instead of `bench/results/`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

from bench import SMOKE

HERE = Path(__file__).resolve().parent
RESULTS = Path(os.environ.get("BENCH_RESULTS") or HERE / "results")


def available() -> list[str]:
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(HERE)])
        if info.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.monotonic()
        outcome = module.run()
        result = asyncio.run(outcome) if inspect.isawaitable(outcome) else outcome
        result = {
            "benchmark": name,
            "smoke": SMOKE,
            "wall_s": round(time.monotonic() - started, 1),
            **result,
        }
        text = json.dumps(result, indent=2, sort_keys=True)
        (RESULTS / f"{name}.json").write_text(text + "\n")
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
