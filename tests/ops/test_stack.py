"""`scripts/stack.py`, which orders `make run`: every component starts after what it needs, every
Livestage service in the Procfile goes through it, and its health ports are distinct."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_stack(monkeypatch: pytest.MonkeyPatch, observe: bool) -> ModuleType:
    monkeypatch.setenv("LIVESTAGE_OBSERVE", "1" if observe else "0")
    spec = importlib.util.spec_from_file_location("stack_under_test", ROOT / "scripts/stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "stack_under_test", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("observe", [False, True])
def test_every_component_starts_after_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, observe: bool
) -> None:
    stack = load_stack(monkeypatch, observe)
    table = stack.components()
    order = stack.start_order(table)
    assert sorted(order) == sorted(table)
    for name, component in table.items():
        for dependency in component.after:
            assert order.index(dependency) < order.index(name), (dependency, name)
    assert order[:3] == ["nats", "redis", "livekit"]
    assert order[-1] == "token"
    if observe:
        assert all("otel-collector" in c.after for c in table.values() if c.module)
    ports = [c.health_port for c in table.values() if c.health_port]
    assert len(ports) == len(set(ports))


def test_a_cycle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = load_stack(monkeypatch, False)
    a = stack.Component("a", lambda: True, ("b",))
    b = stack.Component("b", lambda: True, ("a",))
    with pytest.raises(SystemExit, match="cycle"):
        stack.start_order({"a": a, "b": b})


def test_the_procfile_starts_every_service_through_stack_py(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = load_stack(monkeypatch, False)
    services = {name for name, c in stack.components().items() if c.module}
    lines = dict(
        line.split(": ", 1)
        for line in (ROOT / "Procfile").read_text().splitlines()
        if re.match(r"^[a-z-]+: ", line)
    )
    for name in services:
        assert lines[name] == f".venv/bin/python scripts/stack.py start {name}"
    assert lines["ready"] == ".venv/bin/python scripts/stack.py announce"
    packages = {p.parent.name for p in (ROOT / "services").glob("*/*/__main__.py")}
    assert {c.module for c in stack.components().values() if c.module} == packages


def test_starting_something_that_is_not_a_service_says_what_is() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/stack.py"), "start", "redis"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode != 0
    assert "'redis' is not a service" in result.stderr and "moderation" in result.stderr
