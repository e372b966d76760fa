"""Every repository path that a docstring, a comment or README.md names exists.

A path is a word starting with one of the top-level folders (`services/…`, `shared/…`,
`tests/…`, `scripts/…`, `web/…`, `deploy/…`, `bench/…`, `docs/…`). It counts as existing
relative to the repository or to any folder above the file that names it (a service's docstring
may name its own `tests/…` folder). Globs (`*`) and
placeholders (`<name>`, `{name}`, `...`) are not paths and are skipped; so are the parts of URLs
and absolute paths.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("services", "shared", "tests", "scripts", "web", "deploy", "bench", "docs")
SKIPPED_DIRS = {"node_modules", "dist", "__pycache__", ".venv", ".cache"}
"""Folders that are installed or built, not written (their files name paths of other trees)."""
BUILT = {"web/dist", "web/dist/", "bench/results", "bench/results/"}
"""Paths a run makes (`npm run build`, `make bench`), absent from a fresh clone but fine to name."""

# A word that starts with a top-level folder, not inside a URL or an absolute path (no `/`,
# `.`, `-`, `:` or word character before it), running over path characters and placeholders.
PATH = re.compile(r"(?<![\w/.:~$-])(?:" + "|".join(FOLDERS) + r")/[\w./<>{}*?\[\]…-]*")
PLACEHOLDER = re.compile(r"[<>{}*?\[\]…]|\.\.\.")


def python_files() -> Iterator[Path]:
    yield from ROOT.glob("*.py")
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                yield path


def docstrings_and_comments(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every string statement (docstrings) and comment of a module."""
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for offset, line in enumerate(node.value.value.splitlines()):
                yield node.lineno + offset, line
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def named_paths(text: str) -> Iterator[str]:
    for match in PATH.finditer(text):
        word = match.group(0)
        if PLACEHOLDER.search(word):
            continue
        yield word.rstrip(".-")


def exists(named: str, where: Path) -> bool:
    """`named` is under the repository or a folder above `where` (inside the repository)."""
    folders = [folder for folder in where.parents if folder == ROOT or ROOT in folder.parents]
    return any((folder / named).exists() for folder in folders)


def missing_paths() -> list[str]:
    missing = []
    sources: list[tuple[Path, Iterator[tuple[int, str]]]] = [
        (path, docstrings_and_comments(path)) for path in python_files()
    ]
    readme = ROOT / "README.md"
    sources.append((readme, enumerate(readme.read_text(encoding="utf-8").splitlines(), 1)))
    for path, lines in sources:
        for number, line in lines:
            for named in named_paths(line):
                if named not in BUILT and not exists(named, path):
                    missing.append(f"{named}  (named in {path.relative_to(ROOT)}:{number})")
    return missing


def test_the_pattern_finds_paths_and_skips_urls_globs_and_placeholders() -> None:
    text = (
        "see `services/token/app.py`, shared/livestage/ and docs/metrics.md. "
        "https://example.com/docs/page /work/main/tests/x.py services/*/pyproject.toml "
        "services/<name>/app.py web/src/{page}.ts bench/..."
    )
    assert list(named_paths(text)) == [
        "services/token/app.py",
        "shared/livestage/",
        "docs/metrics.md",
    ]


def test_a_path_may_be_relative_to_a_folder_above_the_file_that_names_it() -> None:
    brain = ROOT / "services" / "host-agent" / "host_agent" / "brain.py"
    assert exists("tests/test_brain.py", brain)
    assert exists("services/host-agent/tests/test_brain.py", ROOT / "README.md")
    assert not exists("tests/test_brain.py", ROOT / "README.md")
    assert not exists("tests/no_such_test.py", brain)


def test_every_path_a_docstring_comment_or_the_readme_names_exists() -> None:
    missing = missing_paths()
    assert not missing, "named but not in the tree (fix the text or the path):\n" + "\n".join(
        missing
    )
