"""How every generator under `scripts/` writes its file, or checks it (`--check`).

    write_or_check(TARGET, render(), sys.argv[1:], generator=__file__)

Without `--check` it writes `text` to `target`. With `--check` it writes nothing and returns 1
(saying which generator to run) when the file is missing or differs from `text`; the tests run
each generator with `--check`, so a generated file cannot drift from its source.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(
    target: Path, text: str, argv: list[str], *, generator: str, note: str = "", then: str = ""
) -> int:
    """Write `target`, or with `--check` in `argv` return 1 if it is not `text`; `note` ends the
    "wrote" line (e.g. how many entries), `then` the out-of-date line (what to do next)."""
    name = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            script = Path(generator).resolve().relative_to(ROOT)
            print(f"{name} is out of date: run `.venv/bin/python {script}`{then}", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {name}{f' ({note})' if note else ''}")
    return 0
