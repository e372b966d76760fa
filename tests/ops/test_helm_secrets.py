"""Each pod gets only its own secrets (issue #16, points 6, 7 and 9 of the chart).

Which secret keys a service reads comes from its settings classes
(`tests/support/service_secrets.py`); the rendered Deployments are mapped to the Secret keys they
receive (secretKeyRef, never `envFrom` of the whole Secret): none receives a key it does not
read, every secret it reads is wired, with the chart's own Secret and with `existingSecret`.
The backend URLs (credentials when auth is on) are in the Secret, not the ConfigMap; the stage
producer, which runs Chromium, holds no LiveKit secret; with an ingress the chart refuses to
render without `edge.trustedProxies`, and the edge gets them as TOKEN_TRUSTED_PROXIES.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.ops.test_helm import (
    CHART,
    TEST_LIVEKIT_SECRET,
    VALUES_CASES,
    component,
    helm,
    of_kind,
    render,
)
from tests.support.service_secrets import (
    NOT_NEEDED,
    SERVICE_SETTINGS,
    env_names,
    secret_env_names,
)

SERVICES = sorted(p.parent.name for p in (CHART.parents[2] / "services").glob("*/pyproject.toml"))
NATS_WITH_PASSWORD = "nats://livestage:nats-password-4f1c@nats.messaging:4222"
REDIS_WITH_PASSWORD = "redis://:redis-password-9a2e@redis-master.data:6379/0"


def secret_refs(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Env name -> its secretKeyRef, for the one container of a Deployment."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert not [s for s in container.get("envFrom", []) if "secretRef" in s], (
        f"{component(deployment)} takes the whole Secret through envFrom"
    )
    refs = {}
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            refs[entry["name"]] = ref
    return refs


def test_the_table_covers_every_service_and_names_real_settings() -> None:
    assert sorted(SERVICE_SETTINGS) == SERVICES
    for service in SERVICES:
        secrets = secret_env_names(service)
        assert "NATS_URL" in secrets  # every service is on the bus
        assert secrets <= env_names(service)
        for name in NOT_NEEDED.get(service, {}):
            assert name in env_names(service), (service, name)
    assert "LIVEKIT_API_SECRET" not in secret_env_names("stage-producer")
    assert "OPENAI_API_KEY" in secret_env_names("host-agent")
    assert "LIVESTAGE_OPERATOR_SECRET" in secret_env_names("token")


@pytest.mark.parametrize("case", sorted(VALUES_CASES))
def test_each_pod_gets_exactly_the_secrets_its_settings_read(case: str) -> None:
    docs = render(values=VALUES_CASES[case])
    deployments = {component(d): d for d in of_kind("Deployment", docs)}
    assert sorted(deployments) == SERVICES
    secret_names = {s["metadata"]["name"] for s in of_kind("Secret", docs)}
    for service, deployment in deployments.items():
        refs = secret_refs(deployment)
        for name, ref in refs.items():
            assert ref["key"] == name, (service, name, ref)
            assert ref["name"] in secret_names or case == "existing-secret", (service, ref)
            if case == "existing-secret":
                assert ref["name"] == "my-livestage-keys"
        received = set(refs)
        read = env_names(service)
        assert received <= read, f"{service} receives {received - read} it does not read"
        missing = secret_env_names(service) - received
        assert not missing, f"{service} reads {missing} but its pod does not get them"
        # a key the pod cannot run without is not optional (an existingSecret missing it
        # stops the pod with a clear event instead of running with a default)
        for name in {"NATS_URL", "LIVEKIT_API_SECRET", "STAGE_ASSET_KEY"} & received:
            assert not refs[name].get("optional"), (service, name)


def test_the_stage_producer_holds_no_livekit_secret_and_a_derived_asset_key() -> None:
    docs = render()
    (stage,) = [d for d in of_kind("Deployment", docs) if component(d) == "stage-producer"]
    refs = secret_refs(stage)
    assert not {name for name in refs if name.startswith("LIVEKIT_")}
    (secret,) = of_kind("Secret", docs)
    key = secret["stringData"]["STAGE_ASSET_KEY"]
    livekit_secret = secret["stringData"]["LIVEKIT_API_SECRET"]
    assert len(key) >= 32 and livekit_secret not in key
    # the same on every render (every replica and upgrade signs alike), different per LiveKit secret
    (again,) = of_kind("Secret", render())
    assert again["stringData"]["STAGE_ASSET_KEY"] == key
    (other,) = of_kind("Secret", render(f"secrets.livekitApiSecret={TEST_LIVEKIT_SECRET}"))
    assert other["stringData"]["STAGE_ASSET_KEY"] != key
    (explicit,) = of_kind("Secret", render("secrets.stageAssetKey=an-explicit-asset-key-0123"))
    assert explicit["stringData"]["STAGE_ASSET_KEY"] == "an-explicit-asset-key-0123"


def test_backend_urls_with_credentials_are_only_in_the_secret() -> None:
    docs = render(f"nats.url={NATS_WITH_PASSWORD}", f"redis.url={REDIS_WITH_PASSWORD}")
    (secret,) = of_kind("Secret", docs)
    assert secret["stringData"]["NATS_URL"] == NATS_WITH_PASSWORD
    assert secret["stringData"]["REDIS_URL"] == REDIS_WITH_PASSWORD
    (configmap,) = of_kind("ConfigMap", docs)
    assert not {"NATS_URL", "REDIS_URL"} & set(configmap["data"])
    for doc in docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            assert "nats-password-4f1c" not in text and "redis-password-9a2e" not in text, doc[
                "kind"
            ]


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("config.NATS_URL=nats://x:4222", "config.NATS_URL: set nats.url instead"),
        ("config.REDIS_URL=redis://x:6379/0", "config.REDIS_URL: set redis.url instead"),
        ("config.STAGE_ASSET_KEY=x", "config.STAGE_ASSET_KEY is a secret"),
        ('config.TOKEN_TRUSTED_PROXIES=["10.0.0.0/8"]', "set edge.trustedProxies instead"),
    ],
)
def test_config_refuses_what_has_its_own_place(setting: str, says: str) -> None:
    result = helm("template", "show", str(CHART), *VALUES_CASES["defaults"], "--set", setting)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr


def test_an_ingress_without_trusted_proxies_is_refused_by_name() -> None:
    result = helm(
        "template", "show", str(CHART), *VALUES_CASES["defaults"],
        "--set", "edge.ingress.enabled=true",
    )  # fmt: skip
    assert result.returncode != 0
    assert "edge.trustedProxies is required with edge.ingress.enabled" in result.stderr


@pytest.mark.parametrize("case", ["ingress", "ci/ci-values.yaml"])
def test_the_edge_gets_the_trusted_proxies_and_only_the_edge(case: str) -> None:
    docs = render(values=VALUES_CASES[case])
    assert of_kind("Ingress", docs)
    for deployment in of_kind("Deployment", docs):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        if component(deployment) == "token":
            assert json.loads(env["TOKEN_TRUSTED_PROXIES"]) == ["10.0.0.0/8"]
        else:
            assert "TOKEN_TRUSTED_PROXIES" not in env


def test_platform_credentials_reach_the_chat_bridge_only() -> None:
    docs = render("secrets.bridge.BRIDGE_YOUTUBE_API_KEY=AIza-unique-youtube-key")
    (secret,) = of_kind("Secret", docs)
    assert secret["stringData"]["BRIDGE_YOUTUBE_API_KEY"] == "AIza-unique-youtube-key"
    holders = {
        component(d)
        for d in of_kind("Deployment", docs)
        if "BRIDGE_YOUTUBE_API_KEY" in secret_refs(d)
    }
    assert holders == {"chat-bridge"}
    result = helm(
        "template", "show", str(CHART), *VALUES_CASES["defaults"],
        "--set", "secrets.bridge.BRIDGE_TYPO_KEY=x",
    )  # fmt: skip
    assert result.returncode != 0
    assert "secrets.bridge.BRIDGE_TYPO_KEY: not a chat-bridge secret" in result.stderr
