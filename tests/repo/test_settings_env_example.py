"""`.env.example` lists exactly the variables the settings classes read, each with a comment."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from livestage.settings import env_variables, settings_classes

ROOT = Path(__file__).resolve().parents[2]


def example_variables() -> dict[str, str]:
    """Each `NAME=value` line of .env.example mapped to the comment line above it."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    variables: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=.*", line)
        if match:
            above = lines[index - 1] if index else ""
            variables[match.group(1)] = (
                above.removeprefix("#").strip() if above.startswith("#") else ""
            )
    return variables


def test_env_example_matches_the_settings_classes() -> None:
    expected = env_variables(settings_classes())
    listed = example_variables()
    assert not set(expected) - set(listed), (
        f"add to .env.example: {sorted(set(expected) - set(listed))}"
    )
    assert not set(listed) - set(expected), (
        f"unknown in .env.example: {sorted(set(listed) - set(expected))}"
    )


def test_every_variable_is_documented() -> None:
    expected = env_variables(settings_classes())
    assert all(expected.values()), [name for name, text in expected.items() if not text]
    undocumented = [name for name, comment in example_variables().items() if not comment]
    assert undocumented == []


def test_example_values_are_valid_defaults(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, _ in example_variables().items():
        monkeypatch.delenv(name, raising=False)
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line):
            name, value = line.split("=", 1)
            monkeypatch.setenv(name, value)
    for cls in settings_classes():
        cls()  # every listed value parses


def env_example(option: str) -> subprocess.CompletedProcess[str]:
    """Run `scripts/env_example.py` with `option` (`--check` or `--markdown`)."""
    script = ROOT / "scripts" / "env_example.py"
    return subprocess.run(
        [sys.executable, str(script), option], capture_output=True, text=True, cwd=ROOT
    )


def test_env_example_is_what_the_generator_writes() -> None:
    """Edit the settings classes, then run `scripts/env_example.py`; never edit the file by hand."""
    result = env_example("--check")
    assert result.returncode == 0, result.stderr


def test_the_readme_settings_table_is_what_the_generator_prints() -> None:
    """After changing a setting, paste `scripts/env_example.py --markdown` into the README."""
    result = env_example("--markdown")
    assert result.returncode == 0, result.stderr
    table = result.stdout.strip()
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README's settings table is stale: paste env_example.py --markdown"
