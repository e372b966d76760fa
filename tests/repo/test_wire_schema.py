"""The page's copy of the wire contract (`web/src/wire/schema.json`) is what the Python models say.

`scripts/wire_schema.py` writes it from `livestage.schemas`, the edge's HTTP models and
`livestage.attributes`; `web/tests/wire.test.ts` holds the page's parsers to it. Together they make
a field renamed on either side fail a test.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from livestage import attributes, schemas

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "web" / "src" / "wire" / "schema.json"


def run_check() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "wire_schema.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_web_wire_schema_is_what_the_generator_writes() -> None:
    """Change a wire model, then run `scripts/wire_schema.py`; never edit the file by hand."""
    result = run_check()
    assert result.returncode == 0, result.stderr


def load_generator() -> ModuleType:
    if str(ROOT / "scripts") not in sys.path:  # as when run as a script: its helpers beside it
        sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(
        "wire_schema", ROOT / "scripts" / "wire_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stale_schema_is_refused_with_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = load_generator()
    stale = json.loads(SCHEMA.read_text())
    stale["$defs"]["ChatMessage"]["properties"]["authorName"]["maxLength"] += 1
    target = tmp_path / "web" / "src" / "wire" / "schema.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(stale, indent=2) + "\n")
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    monkeypatch.setattr(generator, "TARGET", target)

    assert generator.main(["--check"]) == 1
    error = capsys.readouterr().err
    assert "web/src/wire/schema.json is out of date" in error
    assert "scripts/wire_schema.py" in error

    assert generator.main([]) == 0
    assert target.read_text() == SCHEMA.read_text()
    assert generator.main(["--check"]) == 0


def test_the_schema_is_camel_case_as_on_the_wire_and_names_the_host_attributes() -> None:
    document = json.loads(SCHEMA.read_text())
    message = schemas.ChatMessage.model_validate(
        {
            "id": "m1",
            "room": "main",
            "authorIdentity": "viewer_abc_1",
            "authorName": "Ada",
            "avatar": "fox",
            "body": "hi",
            "kind": "viewer",
            "createdAt": schemas.now_ms(),
            "source": {"platform": "twitch", "userId": "42", "messageId": "m-1"},
        }
    )
    assert list(document["$defs"]["ChatMessage"]["properties"]) == list(message.to_wire())
    assert list(document["$defs"]["ChatSource"]["properties"]) == list(message.source.to_wire())
    # page chat has no source, and the wire leaves it out (the schema does not require it)
    assert "source" not in message.model_copy(update={"source": None}).to_wire()
    assert "source" not in document["$defs"]["ChatMessage"]["required"]
    state = document["attributes"]["hostState"]
    assert (state["name"], state["enum"]) == (attributes.HOST_STATE, list(attributes.HOST_STATES))


def test_every_state_the_host_reports_is_one_the_pages_know() -> None:
    from host_agent.job import host_state

    reported = {
        host_state(paused=paused, agent_state=agent_state, planning=planning)
        for paused in (False, True)
        for agent_state in ("initializing", "listening", "thinking", "speaking")
        for planning in (False, True)
    }
    assert reported == set(attributes.HOST_STATES)
