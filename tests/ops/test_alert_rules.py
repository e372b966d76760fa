"""The alert rules (`deploy/prometheus/alerts.yml`): promtool accepts them and their unit tests
(`alerts.test.yml`) pass, each alert is tested firing and quiet, every rule names only series the
Collector's Prometheus exporter makes from `livestage.metrics.ALL` (or Prometheus's own `up`)
with labels they have, every rule has a `for`, a severity, a summary and a one-line runbook, and
the rules reach Prometheus: compose mounts them where prometheus.yml loads them, `make run
OBSERVE=1`'s config loads the same file, and the Helm chart renders them as a PrometheusRule only
where the cluster has monitoring.coreos.com/v1.

promtool comes from `go install github.com/prometheus/prometheus/cmd/promtool@<pinned>`
(scripts/bootstrap.sh, cached as .cache/bin/promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from host_agent.settings import CostSettings
from livestage.settings import default_of
from tests.ops.test_dashboard_and_metrics_doc import SPEC_OF_SERIES, check_series, walk
from tests.ops.test_helm import CI_VALUES, template

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"
PROMTOOL = ROOT / ".cache" / "bin" / "promtool"
# Series Prometheus makes itself, with their labels.
BUILTIN_SERIES = {"up": {"job", "instance"}}
SEVERITIES = {"critical", "warning"}
CRD = ("--api-versions", "monitoring.coreos.com/v1")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), "promtool is missing: run `make bootstrap` (.cache/bin/promtool)"
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """promtool really compares: a healthy collector expected to fire LivestageCollectorDown."""
    shutil.copy(RULES, tmp_path / "alerts.yml")
    wrong = {
        "rule_files": ["alerts.yml"],
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'up{job="otel-collector", instance="c:8889"}', "values": "1x10"}
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "LivestageCollectorDown",
                        "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "wrong.test.yml").write_text(yaml.safe_dump(wrong))
    result = promtool("test", "rules", "wrong.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "LivestageCollectorDown" in result.stdout + result.stderr


def test_every_rule_names_only_series_that_exist_with_their_labels() -> None:
    for rule in rules():
        check_series(rule["alert"], promql_parser.parse(rule["expr"]), BUILTIN_SERIES)


def test_a_rule_naming_an_unknown_series_would_be_caught() -> None:
    tree = promql_parser.parse("increase(livestage_bus_deadlettered_total[5m]) > 0")
    (selector,) = [n for n in walk(tree) if type(n).__name__ == "VectorSelector"]
    assert selector.name not in SPEC_OF_SERIES and selector.name not in BUILTIN_SERIES


def test_every_rule_has_a_for_a_severity_a_summary_and_a_one_line_runbook() -> None:
    found = rules()
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names)) >= 14
    for rule in found:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "runbook"}, rule["alert"]
        assert annotations["summary"].strip() and "\n" not in annotations["summary"]
        assert annotations["runbook"].strip() and "\n" not in annotations["runbook"]


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for name in (rule["alert"] for rule in rules()):
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in mine), f"{name} is never tested firing"
        assert any(not case.get("exp_alerts") for case in mine), f"{name} is never tested quiet"


def test_the_spend_alert_is_80_percent_of_the_default_daily_cap() -> None:
    """No metric carries the cap, so the rule keeps a number: 80% of HOST_COST_DAILY_CAP_USD's
    default (change both together)."""
    (rule,) = [r for r in rules() if r["alert"] == "LivestageSpendNearDailyCap"]
    tree = promql_parser.parse(rule["expr"])
    threshold = tree.rhs.val
    assert threshold == pytest.approx(0.8 * default_of(CostSettings, "daily_cap_usd"))


def test_compose_and_make_run_prometheus_load_the_rules() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    for config in ("prometheus.yml", "prometheus.local.yml"):
        loaded = yaml.safe_load((PROMETHEUS / config).read_text())
        # relative to the config file: /etc/prometheus/alerts.yml in compose, this file for make run
        assert loaded["rule_files"] == ["alerts.yml"], config
        result = promtool("check", "config", str(PROMETHEUS / config))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def prometheus_rules(*args: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all(template("-f", str(CI_VALUES), *args))
    return [doc for doc in docs if doc and doc["kind"] == "PrometheusRule"]


def test_helm_renders_the_rules_as_a_prometheus_rule_where_the_crd_is() -> None:
    (rule,) = prometheus_rules(*CRD, "--set", "prometheusRule.labels.release=monitoring")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "monitoring"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_helm_renders_no_prometheus_rule_without_the_crd_or_when_switched_off() -> None:
    assert prometheus_rules() == []
    assert prometheus_rules(*CRD, "--set", "prometheusRule.enabled=false") == []
