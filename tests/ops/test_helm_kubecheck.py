"""The chart, rendered with every values file, strict-decodes into Kubernetes' own types.

`kubecheck` (tools/kubecheck, built by scripts/bootstrap.sh into .cache/bin) decodes each
document of `helm template`'s output with client-go's scheme and apimachinery's strict decoding:
an unknown or duplicate field, a value of the wrong type or a kind the scheme does not know is
refused, naming the object and the field. helm's own lint accepts all of those.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.ops.test_helm import CI_VALUES, ROOT, VALUES_CASES, template

KUBECHECK = ROOT / ".cache" / "bin" / "kubecheck"


def kubecheck(stream: str) -> subprocess.CompletedProcess[str]:
    assert KUBECHECK.exists(), (
        "kubecheck is missing: run `make bootstrap` (it builds .cache/bin/kubecheck)"
    )
    return subprocess.run(
        [str(KUBECHECK)], input=stream, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("case", sorted(VALUES_CASES))
def test_the_rendered_chart_strict_decodes(case: str) -> None:
    stream = template(*VALUES_CASES[case])
    objects = [doc for doc in yaml.safe_load_all(stream) if doc]
    result = kubecheck(stream)
    assert result.returncode == 0, result.stderr
    assert f"kubecheck: {len(objects)} objects strict-decode" in result.stdout


def rendered_with(change: str, path: str, value: object) -> str:
    """The CI rendering with `value` at `path` (dotted, [0] indexes) of the first `change`."""
    docs = [doc for doc in yaml.safe_load_all(template("-f", str(CI_VALUES))) if doc]
    target = next(doc for doc in docs if doc["kind"] == change)
    *parents, last = path.split(".")
    node = target
    for part in parents:
        name, _, index = part.partition("[")
        node = node[name]
        if index:
            node = node[int(index.rstrip("]"))]
    node[last] = value
    return "---\n".join(yaml.safe_dump(doc) for doc in docs)


@pytest.mark.parametrize(
    ("kind", "path", "value", "says"),
    [
        (
            "Deployment",
            "spec.template.spec.containers[0].envFromm",
            [],
            'unknown field "spec.template.spec.containers[0].envFromm"',
        ),
        ("NetworkPolicy", "spec.egresss", [], 'unknown field "spec.egresss"'),
        ("Service", "spec.ports[0].port", "http", "spec.ports.port of type int32"),
    ],
)
def test_an_unknown_field_or_a_wrong_type_is_refused_naming_object_and_field(
    kind: str, path: str, value: object, says: str
) -> None:
    stream = rendered_with(kind, path, value)
    result = kubecheck(stream)
    assert result.returncode == 1, result.stdout
    assert says in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if says in line]
    assert f": {kind} show-livestage-" in line, line
    assert "1 of" in result.stderr


def test_a_kind_the_scheme_does_not_know_is_refused() -> None:
    stream = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\n"
    result = kubecheck(stream)
    assert result.returncode == 1
    assert "ServiceMonitor x" in result.stderr and "scheme" in result.stderr
