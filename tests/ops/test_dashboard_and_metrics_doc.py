"""The metric docs and the Grafana dashboard follow `livestage.metrics.ALL`: both are generated
from it and must be current, every dashboard query parses as PromQL and names only series the
Collector's Prometheus exporter makes from a spec (with labels the spec has), and there is a row
of panels for each area."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser

from livestage import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "livestage.json"
AREAS = ["chat", "host", "cost", "stage", "platform chat", "infrastructure"]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels every series has besides the spec's attributes (the Collector's and Prometheus's own).
SERIES_LABELS = {"job", "instance", "le", "otel_scope_name"}


def series_of(spec: metrics.MetricSpec) -> set[str]:
    name = metrics.prometheus_name(spec)
    if spec.kind == "histogram":
        return {name + suffix for suffix in HISTOGRAM_SUFFIXES}
    return {name}


SPEC_OF_SERIES = {series: spec for spec in metrics.ALL for series in series_of(spec)}


def run_script(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_docs_metrics_md_is_what_the_generator_writes() -> None:
    result = run_script("metrics_doc.py")
    assert result.returncode == 0, result.stderr


def test_docs_name_every_metric_with_its_prometheus_name() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    for spec in metrics.ALL:
        assert f"| `{spec.name}` | `{metrics.prometheus_name(spec)}` |" in text


def test_dashboard_json_is_what_the_generator_writes() -> None:
    result = run_script("dashboard.py")
    assert result.returncode == 0, result.stderr


def walk(node: Any) -> Iterator[Any]:
    yield node
    for attribute in ("lhs", "rhs", "expr", "args", "vector_selector", "param"):
        child = getattr(node, attribute, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None and not isinstance(item, str | int | float):
                yield from walk(item)


def labels_of(series: str, builtin: dict[str, set[str]]) -> set[str]:
    if series in builtin:
        return builtin[series]
    return set(SPEC_OF_SERIES[series].attributes) | SERIES_LABELS


def check_series(title: str, tree: Any, builtin: dict[str, set[str]] | None = None) -> set[str]:
    """Assert that a parsed query names only series made from a spec (or `builtin`'s, with their
    labels), filters and groups by labels they have; return the spec series it names."""
    builtin = builtin or {}
    selectors = [n for n in walk(tree) if type(n).__name__ == "VectorSelector"]
    assert selectors, title
    for selector in selectors:
        assert selector.name in SPEC_OF_SERIES or selector.name in builtin, (
            f"{title}: {selector.name} is not a metric"
        )
        allowed = labels_of(selector.name, builtin)
        used = {m.name for m in selector.matchers.matchers}
        assert used <= allowed, f"{title}: {selector.name} has no label {used - allowed}"
    for node in walk(tree):
        modifier = getattr(node, "modifier", None)
        if type(node).__name__ == "AggregateExpr" and modifier is not None:
            inner = {n.name for n in walk(node) if type(n).__name__ == "VectorSelector"}
            allowed = SERIES_LABELS.union(*(labels_of(name, builtin) for name in inner))
            assert set(modifier.labels) <= allowed, (title, modifier.labels)
    return {s.name for s in selectors if s.name in SPEC_OF_SERIES}


def queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_every_query_parses_and_names_only_metrics_that_exist() -> None:
    named: set[str] = set()
    found = queries()
    assert len(found) >= 20
    for title, expr in found:
        concrete = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
        tree = promql_parser.parse(concrete)  # raises on a syntax error
        named |= {SPEC_OF_SERIES[name].name for name in check_series(title, tree)}
    # Not a rule that every metric is on the board, but the board covers most of them.
    assert len(named) >= len(metrics.ALL) - 2, sorted({s.name for s in metrics.ALL} - named)


def test_one_row_of_panels_per_area_and_every_panel_uses_the_provisioned_prometheus() -> None:
    board = json.loads(DASHBOARD.read_text())
    rows: dict[str, int] = {}
    current = None
    for panel in board["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = 0
            continue
        assert current is not None
        rows[current] += 1
        assert panel["datasource"]["uid"] == "prometheus"
    assert list(rows) == AREAS
    assert all(count >= 2 for count in rows.values()), rows
    provisioned = (ROOT / "deploy/grafana/provisioning/datasources/datasources.yaml").read_text()
    assert "uid: prometheus" in provisioned
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_a_query_naming_an_unknown_metric_would_be_caught() -> None:
    tree = promql_parser.parse("sum(rate(livestage_chat_sent_total[1m]))")
    names = [n.name for n in walk(tree) if type(n).__name__ == "VectorSelector"]
    assert names == ["livestage_chat_sent_total"]
    assert "livestage_chat_sent_total" not in SPEC_OF_SERIES
