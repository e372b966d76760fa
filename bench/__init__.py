"""Benchmarks: `make bench` (or `python -m bench [name ...]`) runs them and writes JSON.

Each benchmark is a module `bench/bench_<name>.py` with `async def run() -> dict` (or a plain
`def run() -> dict`) returning JSON-ready figures, and `FIGURES`: the dotted paths of the numbers
its JSON always reports (`*` stands for every key of a dict or item of a list, at least one).
`python -m bench` runs every one (or the named ones), prints each result as JSON and writes it
to `bench/results/<name>.json` (`BENCH_RESULTS=<dir>` writes elsewhere). Benchmarks start their
own servers (the same fixtures the tests use) and their full runs are never part of `make test`:
a machine being slow never fails a test. `docs/benchmarks.md` holds the tables and how to read
them.

`BENCH_SMOKE=1` is the smoke mode: every benchmark runs a few rounds and a second or two of
load (`smoke_or(full, smoke)` picks its sizes), so that `tests/repo/test_bench_smoke.py` can run
each one in `make test` and check that it still completes and reports its `FIGURES`. Smoke figures
say nothing about speed.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

SMOKE = os.environ.get("BENCH_SMOKE", "") not in ("", "0")
"""True under `BENCH_SMOKE=1`: a few rounds and a second or two of load, to prove the bench runs."""


def smoke_or(full: T, smoke: T) -> T:
    """`full` for a real run, `smoke` under `BENCH_SMOKE=1`."""
    return smoke if SMOKE else full


def where_and_when() -> dict[str, Any]:
    """What every result opens with: the machine (shared, so under contention) and its load."""
    return {
        "machine": f"{platform.node()} {os.cpu_count()} cpus (shared with other work: "
        "figures are under contention)",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def missing_figures(result: Any, figures: Iterable[str]) -> list[str]:
    """What is wrong with `result` against `figures`: each path it lacks or whose value is not a
    finite number, e.g. `rates.50.path.p99_ms: not a number (None)`. Empty: all reported."""
    problems: list[str] = []
    for path in figures:
        for where, value in _resolve(result, path.split("."), []):
            if isinstance(value, _Missing):
                problems.append(f"{where}: {value.why}")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{where}: not a number ({value!r})")
            elif not math.isfinite(value):
                problems.append(f"{where}: not a finite number ({value!r})")
    return problems


class _Missing:
    def __init__(self, why: str) -> None:
        self.why = why


def _resolve(value: Any, parts: list[str], seen: list[str]) -> list[tuple[str, Any]]:
    """(path, value) for every match of `parts` in `value`; a `_Missing` where there is none."""
    if not parts:
        return [(".".join(seen), value)]
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, dict):
            items = [(str(key), item) for key, item in value.items()]
        elif isinstance(value, list):
            items = [(str(index), item) for index, item in enumerate(value)]
        else:
            items = []
        if not items:
            return [(".".join([*seen, "*"]), _Missing("missing (no entries)"))]
        return [found for key, item in items for found in _resolve(item, rest, [*seen, key])]
    if not isinstance(value, dict) or head not in value:
        return [(".".join([*seen, head]), _Missing("missing"))]
    return _resolve(value[head], rest, [*seen, head])
