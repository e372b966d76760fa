"""The Helm chart (`deploy/helm/livestage`) lints and renders, and what it renders is checked: a
Deployment per service running its package with probes, resources and a non-root security
context, a Service, a PodDisruptionBudget each, HPAs for the edge, moderation and chat-history,
a NetworkPolicy that denies the stage producer every private address, values that point at
external NATS, Redis and LiveKit, and no secret in a ConfigMap. Which secret each pod gets:
test_helm_secrets.py; the NetworkPolicies per values file: test_helm_policy.py; the rendered
chart strict-decoded into client-go's types: test_helm_kubecheck.py.

helm comes from `go install helm.sh/helm/v3/cmd/helm@<pinned>` (scripts/bootstrap.sh, cached as
.cache/bin/helm)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from host_agent.settings import HostSettings
from livestage.settings import (
    ServiceSettings,
    default_of,
    env_variables,
    own_fields,
    settings_classes,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "livestage"
CI_VALUES = CHART / "ci" / "ci-values.yaml"
HELM = ROOT / ".cache" / "bin" / "helm"
SERVICE_DIRS = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
AUTOSCALED = {"token", "moderation", "chat-history"}
SETTINGS_VARIABLES = set(env_variables(settings_classes()))


def secret_variables() -> set[str]:
    """Variables whose settings field is a SecretStr: they may only ever be in a Secret."""
    names = set()
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, field in own_fields(cls).items():
            if "SecretStr" in str(field.annotation):
                names.add((prefix + field_name).upper())
    return names


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), "helm is missing: run `make bootstrap` (it builds .cache/bin/helm)"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60)


TEST_LIVEKIT_SECRET = "test-only-livekit-secret-0123456789abcdef"

VALUES_CASES: dict[str, tuple[str, ...]] = {
    # values.yaml's defaults (plus the one value without a default)
    "defaults": ("--set", f"secrets.livekitApiSecret={TEST_LIVEKIT_SECRET}"),
    **{
        f"ci/{path.name}": ("-f", str(path))
        for path in sorted((CHART / "ci").glob("*.yaml"))
    },
    "ingress": (
        "--set", f"secrets.livekitApiSecret={TEST_LIVEKIT_SECRET}",
        "--set", "edge.ingress.enabled=true",
        "--set", "edge.trustedProxies={10.0.0.0/8}",
    ),
    "existing-secret": ("--set", "secrets.existingSecret=my-livestage-keys"),
}  # fmt: skip
"""Every way the chart is rendered in these tests: each values file, ingress on, existingSecret."""


def template(*args: str) -> str:
    """`helm template show <chart> <args>`'s output (asserting it rendered)."""
    result = helm("template", "show", str(CHART), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(*sets: str, values: tuple[str, ...] = ("-f", str(CI_VALUES))) -> list[dict[str, Any]]:
    args = list(values)
    for item in sets:
        args += ["--set", item]
    return [doc for doc in yaml.safe_load_all(template(*args)) if doc]


def refusal(*sets: str) -> str:
    """What `helm template` says when the CI values with `sets` must not render (asserting it
    refused)."""
    args = ["-f", str(CI_VALUES)]
    for item in sets:
        args += ["--set", item]
    result = helm("template", "show", str(CHART), *args)
    assert result.returncode != 0, "rendered, but should have been refused"
    return result.stderr


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    return tuple(render())


def of_kind(kind: str, docs: tuple[dict[str, Any], ...] | list[dict[str, Any]] = ()) -> list[Any]:
    return [doc for doc in (docs or rendered()) if doc["kind"] == kind]


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


def package_of(service_dir: str) -> str:
    (package,) = [p.parent.name for p in (ROOT / "services" / service_dir).glob("*/__main__.py")]
    return package


def test_helm_lint_passes_strictly() -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(CI_VALUES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_deployment_per_service_with_probes_resources_and_a_non_root_context() -> None:
    deployments = {component(d): d for d in of_kind("Deployment")}
    assert set(deployments) == set(SERVICE_DIRS)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", package_of(name)]
        assert container["image"].endswith(f"livestage-{name}:0.1.0")
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ):
            get = container[probe]["httpGet"]
            assert get["path"] == path and get["port"] in port_names, (name, probe)
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"]
        assert resources["limits"]["cpu"] and resources["limits"]["memory"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if name == "token":
            assert env["TOKEN_HOST"] == "0.0.0.0"
            assert int(env["TOKEN_PORT"]) == port_names["http"]
        else:
            assert int(env["LIVESTAGE_HEALTH_PORT"]) == port_names["health"]
        assert set(env) <= SETTINGS_VARIABLES, set(env) - SETTINGS_VARIABLES


def test_services_pdbs_and_hpas_select_the_deployments_pods() -> None:
    deployments = {component(d): d for d in of_kind("Deployment")}
    pod_labels = {
        name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()
    }

    def selects(selector: dict[str, str], name: str) -> bool:
        return all(pod_labels[name].get(k) == v for k, v in selector.items())

    services = {component(s): s for s in of_kind("Service")}
    assert set(services) == set(deployments)
    for name, service in services.items():
        assert [n for n in pod_labels if selects(service["spec"]["selector"], n)] == [name]
    pdbs = {component(p): p for p in of_kind("PodDisruptionBudget")}
    assert set(pdbs) == set(deployments)
    for name, pdb in pdbs.items():
        assert [n for n in pod_labels if selects(pdb["spec"]["selector"]["matchLabels"], n)] == [
            name
        ]
    hpas = {component(h): h for h in of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == AUTOSCALED
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployments[name]["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] >= 2
        # the HPA owns the replica count
        assert "replicas" not in deployments[name]["spec"]


def allowed_by_ip_blocks(policy: dict[str, Any], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if not block:
                continue
            network = ipaddress.ip_network(block["cidr"])
            if ip.version != network.version or ip not in network:
                continue
            excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
            if not any(ip.version == e.version and ip in e for e in excepted):
                return True
    return False


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "127.0.0.1", "100.64.0.1",
     "0.0.0.0", "fd00::1", "fe80::1", "::1"],
)  # fmt: skip
def test_the_stage_producer_may_not_reach_a_private_address(address: str) -> None:
    (policy,) = [p for p in of_kind("NetworkPolicy") if component(p) == "stage-producer"]
    assert "Egress" in policy["spec"]["policyTypes"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "stage-producer"
    )
    assert not allowed_by_ip_blocks(policy, address)
    # the other rules name peers by selector and port only (DNS, the backends by namespace)
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            if "ipBlock" not in peer:
                assert rule.get("ports"), rule


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1"])
def test_the_stage_producer_may_reach_the_internet(address: str) -> None:
    (policy,) = [p for p in of_kind("NetworkPolicy") if component(p) == "stage-producer"]
    assert allowed_by_ip_blocks(policy, address)


def test_no_secret_in_a_configmap_and_every_secret_setting_in_the_secret() -> None:
    docs = render(
        "secrets.openaiApiKey=sk-unique-openai-value",
        "secrets.geminiApiKey=unique-gemini-value",
    )
    secrets = secret_variables()
    assert {"LIVEKIT_API_SECRET", "OPENAI_API_KEY", "LIVESTAGE_OPERATOR_SECRET"} <= secrets
    (configmap,) = of_kind("ConfigMap", docs)
    (secret,) = of_kind("Secret", docs)
    assert not set(configmap["data"]) & secrets
    assert secrets <= set(secret["stringData"]), secrets - set(secret["stringData"])
    assert set(configmap["data"]) | set(secret["stringData"]) <= SETTINGS_VARIABLES
    for doc in docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            assert "sk-unique-openai-value" not in text and "unique-gemini-value" not in text
    assert secret["stringData"]["OPENAI_API_KEY"] == "sk-unique-openai-value"
    for deployment in of_kind("Deployment", docs):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert not [source for source in container["envFrom"] if "secretRef" in source]
        refs = {
            entry["valueFrom"]["secretKeyRef"]["name"]
            for entry in container["env"]
            if "secretKeyRef" in entry.get("valueFrom", {})
        }
        assert refs == {secret["metadata"]["name"]}


def test_a_secret_put_under_config_is_refused() -> None:
    assert "config.OPENAI_API_KEY is a secret" in refusal("config.OPENAI_API_KEY=x")


def test_an_existing_secret_replaces_the_generated_one() -> None:
    docs = render("secrets.existingSecret=my-livestage-keys", "secrets.livekitApiSecret=")
    assert of_kind("Secret", docs) == []
    for deployment in of_kind("Deployment", docs):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
        assert refs and {ref["name"] for ref in refs} == {"my-livestage-keys"}


def test_values_point_at_external_nats_redis_livekit_and_the_collector() -> None:
    docs = render(
        "nats.url=nats://a:4222\\,nats://b:4222",
        "redis.url=rediss://cache.example:6380/2",
        "livekit.url=wss://p.livekit.cloud",
        "livekit.apiUrl=https://p.livekit.cloud",
        "telemetry.otlpEndpoint=http://collector:4318",
        "edge.trustedProxies={10.0.0.0/8,fd00::/8}",
    )
    (configmap,) = of_kind("ConfigMap", docs)
    (secret,) = of_kind("Secret", docs)
    assert secret["stringData"]["NATS_URL"] == "nats://a:4222,nats://b:4222"
    assert secret["stringData"]["REDIS_URL"] == "rediss://cache.example:6380/2"
    assert configmap["data"]["LIVEKIT_URL"] == "wss://p.livekit.cloud"
    assert configmap["data"]["LIVEKIT_API_URL"] == "https://p.livekit.cloud"
    assert configmap["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    (edge,) = [d for d in of_kind("Deployment", docs) if component(d) == "token"]
    (container,) = edge["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["TOKEN_TRUSTED_PROXIES"]) == ["10.0.0.0/8", "fd00::/8"]
    (ingress,) = of_kind("Ingress", docs)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    (edge_service,) = [s for s in of_kind("Service", docs) if component(s) == "token"]
    assert backend["name"] == edge_service["metadata"]["name"]


def test_rendering_without_a_livekit_secret_says_what_is_missing() -> None:
    result = helm("template", "show", str(CHART))
    assert result.returncode != 0
    assert "secrets.livekitApiSecret is required" in result.stderr


def test_the_edge_reaches_the_stage_producers_asset_server() -> None:
    deployments = {component(d): d for d in of_kind("Deployment")}
    (edge,) = deployments["token"]["spec"]["template"]["spec"]["containers"]
    (stage,) = deployments["stage-producer"]["spec"]["template"]["spec"]["containers"]
    edge_env = {e["name"]: e.get("value") for e in edge["env"]}
    stage_env = {e["name"]: e.get("value") for e in stage["env"]}
    (stage_service,) = [s for s in of_kind("Service") if component(s) == "stage-producer"]
    port = int(stage_env["STAGE_HTTP_PORT"])
    assert stage_env["STAGE_HTTP_HOST"] == "0.0.0.0"
    assert edge_env["TOKEN_STAGE_MEDIA_URL"] == (
        f"http://{stage_service['metadata']['name']}:{port}"
    )
    assert port in {p["port"] for p in stage_service["spec"]["ports"]}
    assert port in {p["containerPort"] for p in stage["ports"]}
    mounts = {m["mountPath"] for m in stage["volumeMounts"]}
    assert stage_env["STAGE_ASSET_DIR"] in mounts


def test_a_services_pod_security_context_is_merged_over_the_shared_one_for_it_alone() -> None:
    docs = render(
        "services.stage-producer.podSecurityContext.seccompProfile.type=Localhost",
        "services.stage-producer.podSecurityContext.seccompProfile.localhostProfile=chromium.json",
    )
    for deployment in of_kind("Deployment", docs):
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
        if component(deployment) == "stage-producer":
            assert context["seccompProfile"] == {
                "type": "Localhost",
                "localhostProfile": "chromium.json",
            }
        else:
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "appArmorProfile" not in context


def test_the_stage_producer_may_use_chromiums_sandbox_by_default() -> None:
    """Chromium's sandbox needs a user namespace, which RuntimeDefault seccomp and restricting
    AppArmor refuse: by default the stage producer's pod (and no other) runs Unconfined under
    the runtime, still as UID 10001 without privilege escalation or capabilities."""
    for deployment in of_kind("Deployment", render()):
        spec = deployment["spec"]["template"]["spec"]
        context = spec["securityContext"]
        container = spec["containers"][0]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
        assert container["allowPrivilegeEscalation"] is False
        assert container["capabilities"]["drop"] == ["ALL"]
        if component(deployment) == "stage-producer":
            assert context["seccompProfile"] == {"type": "Unconfined"}
            assert context["appArmorProfile"] == {"type": "Unconfined"}
        else:
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "appArmorProfile" not in context


def host_agent_stop(docs: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> tuple[float, ...]:
    """The host agent's (grace period, HOST_DRAIN_TIMEOUT_S, LIVESTAGE_STOP_TIMEOUT_S) as its
    pod would see them (its env, else the ConfigMap, else the settings' defaults)."""
    (deployment,) = [d for d in of_kind("Deployment", docs) if component(d) == "host-agent"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (configmap,) = of_kind("ConfigMap", docs)
    env = {**configmap["data"], **{e["name"]: e.get("value") for e in container["env"]}}
    drain = float(env.get("HOST_DRAIN_TIMEOUT_S", default_of(HostSettings, "drain_timeout_s")))
    stop = float(env.get("LIVESTAGE_STOP_TIMEOUT_S", default_of(ServiceSettings, "stop_timeout_s")))
    return float(pod["terminationGracePeriodSeconds"]), drain, stop


@pytest.mark.parametrize("values", sorted(VALUES_CASES))
def test_the_host_agents_grace_period_covers_its_drain_and_stop(values: str) -> None:
    docs = [doc for doc in yaml.safe_load_all(template(*VALUES_CASES[values])) if doc]
    grace, drain, stop = host_agent_stop(docs)
    assert drain > 0  # SIGTERM lets shows finish the turn being heard
    assert grace > drain + stop, (grace, drain, stop)


def test_a_grace_period_the_drain_does_not_fit_in_is_refused() -> None:
    assert "services.host-agent.terminationGracePeriodSeconds (60) must exceed" in refusal(
        "services.host-agent.env.HOST_DRAIN_TIMEOUT_S=120"
    )
    docs = render(
        "services.host-agent.env.HOST_DRAIN_TIMEOUT_S=120",
        "services.host-agent.terminationGracePeriodSeconds=130",
    )
    assert host_agent_stop(docs) == (130, 120, default_of(ServiceSettings, "stop_timeout_s"))


def test_the_charts_guard_knows_the_settings_defaults() -> None:
    """Without HOST_DRAIN_TIMEOUT_S in values, the guard uses the settings' own defaults."""
    budget = default_of(HostSettings, "drain_timeout_s") + default_of(
        ServiceSettings, "stop_timeout_s"
    )
    unset = "services.host-agent.env.HOST_DRAIN_TIMEOUT_S=null"
    assert "must exceed" in refusal(
        unset, f"services.host-agent.terminationGracePeriodSeconds={budget:g}"
    )
    docs = render(unset, f"services.host-agent.terminationGracePeriodSeconds={budget + 1:g}")
    assert host_agent_stop(docs)[0] == budget + 1


def test_the_egress_deployment_is_optional_and_takes_its_secret_from_the_secret() -> None:
    """`egress.enabled` (default false) adds a livekit/egress Deployment whose API secret comes
    from the chart's Secret (never a ConfigMap) and whose Redis must be named."""
    off = [
        d
        for d in rendered()
        if d["kind"] == "Deployment" and "livekit-egress" in d["metadata"]["name"]
    ]
    assert off == []
    docs = render("egress.enabled=true", "egress.redisAddress=lk-redis:6379")
    (egress,) = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-livekit-egress")
    ]
    container = egress["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("livekit/egress:v")
    env = {e["name"]: e for e in container["env"]}
    assert env["EGRESS_REDIS"]["value"] == "lk-redis:6379"
    assert "secretKeyRef" in env["LIVEKIT_API_SECRET"]["valueFrom"]
    assert "SYS_ADMIN" in container["securityContext"]["capabilities"]["add"]
    assert "egress.redisAddress is required" in refusal("egress.enabled=true")
