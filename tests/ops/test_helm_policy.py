"""The NetworkPolicies allow exactly what each component's settings name, for every values file.

Each rendered policy is evaluated the way a CNI reads it (peers by namespace and pod labels or
by address, ports with protocol and ranges) against concrete destinations and sources: where
each values file puts NATS, Redis, the collector and LiveKit (`BACKENDS`). A component reaches
DNS and the backends its settings classes read (tests/support/service_secrets.py), e.g. the stage
producer reaches NATS in namespace `messaging` with ci-values.yaml; it reaches no Redis it does
not read, no other namespace, no private address, no cloud metadata. Only the edge takes
traffic from the ingress controller; the asset server only from the edge; the workers' health
ports from nobody (the kubelet's probes come from the node, which CNIs let through).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from livestage.settings import LiveKitSettings, NatsSettings, RedisSettings, TelemetrySettings
from tests.ops.test_helm import VALUES_CASES, component, of_kind, render
from tests.support.service_secrets import SERVICE_SETTINGS

RELEASE_NAMESPACE = "default"  # `helm template` without --namespace


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels) or an address outside the cluster (namespace None)."""

    ip: str
    port: int
    namespace: str | None = RELEASE_NAMESPACE
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    protocol: str = "TCP"


def pod(namespace: str, port: int, ip: str = "10.42.0.9", **labels: str) -> Endpoint:
    return Endpoint(ip, port, namespace, labels)


def outside(ip: str, port: int, protocol: str = "TCP") -> Endpoint:
    return Endpoint(ip, port, None, protocol=protocol)


PUBLIC_HOST = "93.184.216.34"
BACKENDS: dict[str, dict[str, Endpoint | None]] = {
    "defaults": {  # nats://nats:4222, redis://redis-master:6379/0, wss://livekit.example.com
        "nats": pod(RELEASE_NAMESPACE, 4222, app="nats"),
        "redis": pod(RELEASE_NAMESPACE, 6379, app="redis"),
        "collector": None,
        "livekit": outside(PUBLIC_HOST, 443),
    },
    "ci/ci-values.yaml": {  # nats.messaging, redis-master.data, otel-collector.observability
        "nats": pod("messaging", 4222, app="nats"),
        "redis": pod("data", 6379, app="redis"),
        "collector": pod("observability", 4318, app="otel-collector"),
        "livekit": outside(PUBLIC_HOST, 443),
    },
}
BACKENDS["ingress"] = BACKENDS["defaults"]
BACKENDS["existing-secret"] = BACKENDS["defaults"]

READS = {
    "nats": NatsSettings,
    "redis": RedisSettings,
    "collector": TelemetrySettings,
    "livekit": LiveKitSettings,
}
"""Which settings class names each backend."""


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def peer_matches(peer: dict[str, Any], other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(other.ip)
        network = ipaddress.ip_network(block["cidr"])
        if ip.version != network.version or ip not in network:
            return False
        return not any(
            ip.version == e.version and ip in e
            for e in map(ipaddress.ip_network, block.get("except", []))
        )
    if other.namespace is None:
        return False  # only an ipBlock names an address outside the cluster
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != RELEASE_NAMESPACE:
        return False
    return selects(peer.get("podSelector"), other.labels)


def port_matches(ports: list[dict[str, Any]] | None, other: Endpoint) -> bool:
    if not ports:
        return True
    for port in ports:
        if port.get("protocol", "TCP") != other.protocol:
            continue
        number = port.get("port")
        if number is None or number <= other.port <= port.get("endPort", number):
            return True
    return False


def allows(policy: dict[str, Any], direction: str, other: Endpoint) -> bool:
    """Whether `policy` lets its pods reach `other` (egress) or `other` reach them (ingress)."""
    spec = policy["spec"]
    kind, key = ("Egress", "to") if direction == "egress" else ("Ingress", "from")
    if kind not in spec["policyTypes"]:
        return True
    for rule in spec.get(direction) or []:
        peers = rule.get(key)
        if (not peers or any(peer_matches(p, other) for p in peers)) and port_matches(
            rule.get("ports"), other
        ):
            return True
    return False


def policies_of(case: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    docs = render(values=VALUES_CASES[case])
    policies = {component(p): p for p in of_kind("NetworkPolicy", docs)}
    deployments = {component(d): d for d in of_kind("Deployment", docs)}
    assert set(policies) == set(deployments) == set(SERVICE_SETTINGS)
    for name, policy in policies.items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selected = [n for n, d in deployments.items() if selects(
            policy["spec"]["podSelector"], d["spec"]["template"]["metadata"]["labels"]
        )]  # fmt: skip
        assert selected == [name], (name, selected)
        assert selects(policy["spec"]["podSelector"], pod_labels)
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    return policies, deployments


@pytest.mark.parametrize("case", sorted(VALUES_CASES))
def test_each_component_reaches_dns_and_exactly_the_backends_its_settings_name(case: str) -> None:
    policies, _ = policies_of(case)
    dns = pod("kube-system", 53, k8s_app="kube-dns")
    for name, policy in policies.items():
        assert allows(policy, "egress", Endpoint(dns.ip, 53, "kube-system", protocol="UDP"))
        assert allows(policy, "egress", dns)
        reads = set(SERVICE_SETTINGS[name])
        for backend, where in BACKENDS[case].items():
            if where is None:
                continue
            wanted = READS[backend] in reads
            assert allows(policy, "egress", where) == wanted or (
                where.namespace is None and not wanted  # the public internet may be open
            ), (name, backend, where, wanted)
        # nothing else in the cluster, no private address, no cloud metadata
        for other in (
            pod("other", 4222, app="nats"),
            pod("other", 6379),
            pod(RELEASE_NAMESPACE, 22),
            outside("10.9.9.9", 443),
            outside("172.20.0.1", 80),
            outside("169.254.169.254", 80),
            outside("fd00::1", 443),
        ):
            assert not allows(policy, "egress", other), (name, other)


@pytest.mark.parametrize("case", sorted(VALUES_CASES))
def test_only_the_edge_takes_outside_traffic_and_the_asset_server_only_from_the_edge(
    case: str,
) -> None:
    policies, deployments = policies_of(case)

    def labels(name: str) -> dict[str, str]:
        return dict(deployments[name]["spec"]["template"]["metadata"]["labels"])

    def ports(name: str) -> dict[str, int]:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        return {p["name"]: p["containerPort"] for p in container["ports"]}

    ingress_controller = pod("ingress-nginx", 0, app="ingress-nginx")
    edge_port = ports("token")["http"]
    assets_port = ports("stage-producer")["assets"]

    def at(source: Endpoint, port: int) -> Endpoint:
        return Endpoint(source.ip, port, source.namespace, source.labels)

    assert allows(policies["token"], "ingress", at(ingress_controller, edge_port))
    assert not allows(policies["token"], "ingress", at(ingress_controller, 22))
    stranger = pod(RELEASE_NAMESPACE, 0, app="something-else")
    assert not allows(policies["token"], "ingress", at(stranger, edge_port))
    edge = pod(RELEASE_NAMESPACE, 0, **labels("token"))
    assert allows(policies["stage-producer"], "ingress", at(edge, assets_port))
    assert allows(policies["token"], "egress", Endpoint(edge.ip, assets_port, labels=labels(
        "stage-producer"
    )))  # fmt: skip
    for name, policy in policies.items():
        health = ports(name).get("health", edge_port)
        for source in (
            ingress_controller,
            stranger,
            pod(RELEASE_NAMESPACE, 0, **labels("host-agent")),
        ):
            if name == "token" and source is ingress_controller:
                continue
            assert not allows(policy, "ingress", at(source, health)), (name, source)
            assert not allows(policy, "ingress", at(source, assets_port)) or (
                name == "stage-producer" and source.labels == labels("token")
            ), (name, source)
    assert not allows(policies["stage-producer"], "ingress", at(ingress_controller, assets_port))


def test_backend_overrides_and_addresses_shape_the_rules() -> None:
    docs = render(
        "nats.url=nats://u:p@10.20.30.40:4333\\,nats://nats.bus.svc.cluster.local:4222",
        "networkPolicy.backends.redis.to[0].ipBlock.cidr=10.50.0.0/16",
        "networkPolicy.backends.redis.ports[0].port=6380",
        "networkPolicy.backends.nats.podSelector.matchLabels.app=nats",
    )
    (stage,) = [p for p in of_kind("NetworkPolicy", docs) if component(p) == "stage-producer"]
    (edge,) = [p for p in of_kind("NetworkPolicy", docs) if component(p) == "token"]
    assert allows(stage, "egress", outside("10.20.30.40", 4333))
    assert not allows(stage, "egress", outside("10.20.30.41", 4333))
    assert allows(stage, "egress", pod("bus", 4222, app="nats"))
    assert not allows(stage, "egress", pod("bus", 4222, app="other"))
    assert allows(edge, "egress", outside("10.50.1.2", 6380))
    assert not allows(edge, "egress", outside("10.50.1.2", 6379))
    assert not allows(stage, "egress", outside("10.50.1.2", 6380))  # it reads no Redis
